package cli

import (
	"errors"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/spf13/cobra"
)

// Exit statuses of the commands that run a container's program (run,
// exec, start -a), as Docker and Podman have them, so that a script can
// tell berth's failures from the program's: the program's own status,
// 126 when it cannot be executed, 127 when it is not there, and 125 for
// everything else that went wrong — berth's own errors, its flags and
// arguments included.
const ownFailure = 125

// withRunStatus makes cmd exit with those statuses; when attached is not
// nil, only while it says the command runs the program attached.
func withRunStatus(cmd *cobra.Command, attached func() bool) *cobra.Command {
	on := func() bool { return attached == nil || attached() }
	run, args := cmd.RunE, cmd.Args
	cmd.RunE = func(c *cobra.Command, a []string) error {
		err := run(c, a)
		if !on() {
			return err
		}
		return runStatus(err)
	}
	if args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error {
			if err := args(c, a); err != nil {
				return errdefs.WithExitCode(fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument), ownFailure)
			}
			return nil
		}
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		err = flagError(nil, err)
		if on() {
			err = errdefs.WithExitCode(err, ownFailure)
		}
		return err
	})
	return cmd
}

// runStatus is err as the exit status of a command that ran a program.
func runStatus(err error) error {
	var se *errdefs.StatusError
	if err == nil || errors.As(err, &se) || errors.Is(err, errdefs.ErrCommandNotFound) || errors.Is(err, errdefs.ErrCannotExecute) {
		return err
	}
	return errdefs.WithExitCode(err, ownFailure)
}

// flagError is a flag that could not be parsed: invalid input, exit
// status 2 like berth's other validation errors.
func flagError(_ *cobra.Command, err error) error {
	return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
}

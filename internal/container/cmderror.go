package container

import (
	"errors"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// commandError is err, the failure of a run, start or exec, in the user's
// words when the runtime could not start the container's command. A
// command that is not there or cannot be executed is said as Docker and
// Podman say it, `exec: "NAME": executable file not found in $PATH` (or
// why it cannot be executed), without the runtime's names for the spec's
// fields or the container's id; its class, and so its exit status (127 or
// 126), stays. A working directory that cannot be entered is named as
// one. Any other error is returned as it is.
func commandError(err error) error {
	msg := err.Error()
	// The runtime's init words them `process.args[0] "NAME": WHY` and
	// `process.cwd DIR: [chdir: ]WHY`.
	const args, cwd = `process.args[0] "`, `process.cwd `
	if errors.Is(err, errdefs.ErrCommandNotFound) || errors.Is(err, errdefs.ErrCannotExecute) {
		if i := strings.LastIndex(msg, args); i >= 0 {
			return errdefs.FromClass(errdefs.ClassName(err), `exec: "`+msg[i+len(args):])
		}
		return err
	}
	if i := strings.LastIndex(msg, cwd); i >= 0 {
		dir, why, ok := strings.Cut(msg[i+len(cwd):], ": ")
		if ok {
			prefix, _, _ := strings.Cut(msg, ": ")
			return fmt.Errorf("%s: working directory %s: %s: %w", prefix, dir, strings.TrimPrefix(why, "chdir: "), errdefs.ErrInvalidArgument)
		}
	}
	return err
}

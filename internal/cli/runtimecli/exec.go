package runtimecli

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
)

func newRuntimeExec(g *runtimeGlobals) *cobra.Command {
	var o runtime.ExecOptions
	var processFile, cwd, userSpec string
	var env, caps []string
	var gids []int
	var tty, noNewPrivs bool
	cmd := &cobra.Command{
		Use:   "exec [flags] ID [COMMAND [ARG...]]",
		Short: "Run a new process inside a running container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.failStatus = 255
			id := args[0]
			var p *specs.Process
			if processFile != "" {
				data, err := os.ReadFile(processFile)
				if err != nil {
					return fmt.Errorf("--process: %w", err)
				}
				p = &specs.Process{}
				if err := json.Unmarshal(data, p); err != nil {
					return fmt.Errorf("--process %s: %v: %w", processFile, err, errdefs.ErrInvalidArgument)
				}
			} else {
				if len(args) < 2 {
					return fmt.Errorf("exec: give a command or --process FILE: %w", errdefs.ErrInvalidArgument)
				}
				spec, err := g.rt.Spec(id)
				if err != nil {
					return err
				}
				base := *spec.Process
				p = &base
				p.Args = args[1:]
				p.Terminal = tty
				p.Env = append(append([]string{}, p.Env...), env...)
				if cwd != "" {
					p.Cwd = cwd
				}
				if userSpec != "" {
					u, err := parseUser(userSpec)
					if err != nil {
						return err
					}
					p.User = u
				}
				for _, gid := range gids {
					p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(gid))
				}
				if len(caps) > 0 && p.Capabilities != nil {
					c := *p.Capabilities
					c.Bounding = append(append([]string{}, c.Bounding...), caps...)
					c.Effective = append(append([]string{}, c.Effective...), caps...)
					c.Permitted = append(append([]string{}, c.Permitted...), caps...)
					p.Capabilities = &c
				}
				if noNewPrivs {
					p.NoNewPrivileges = true
				}
			}
			o.Process = p
			status, err := g.rt.Exec(cmd.Context(), id, o)
			if err != nil {
				return err
			}
			if status != 0 {
				return &errdefs.StatusError{Status: status}
			}
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	f := cmd.Flags()
	f.StringVarP(&processFile, "process", "p", "", "JSON file with the process (runtime-spec Process)")
	f.StringVar(&o.PidFile, "pid-file", "", "write the new process's pid to this file")
	f.BoolVarP(&o.Detach, "detach", "d", false, "return once the process runs")
	f.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-terminal")
	f.StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket that receives the pty master")
	f.StringArrayVarP(&env, "env", "e", nil, "set an environment variable (KEY=VALUE)")
	f.StringVar(&cwd, "cwd", "", "working directory inside the container")
	f.StringVarP(&userSpec, "user", "u", "", "UID[:GID] to run as")
	f.IntSliceVarP(&gids, "additional-gids", "g", nil, "additional group ids")
	f.StringArrayVarP(&caps, "cap", "c", nil, "add a capability")
	f.BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs for the process")
	f.IntVar(&o.PreserveFDs, "preserve-fds", 0, "pass this many extra descriptors (from fd 3)")
	f.String("apparmor", "", "ignored (AppArmor is not supported)")
	f.String("process-label", "", "ignored (SELinux is not supported)")
	return cmd
}

func parseUser(s string) (specs.User, error) {
	uidStr, gidStr, hasGID := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(uidStr, 10, 32)
	if err != nil {
		return specs.User{}, fmt.Errorf("--user %q: expected UID[:GID] as numbers: %w", s, errdefs.ErrInvalidArgument)
	}
	u := specs.User{UID: uint32(uid)}
	if hasGID {
		gid, err := strconv.ParseUint(gidStr, 10, 32)
		if err != nil {
			return specs.User{}, fmt.Errorf("--user %q: expected UID[:GID] as numbers: %w", s, errdefs.ErrInvalidArgument)
		}
		u.GID = uint32(gid)
	}
	return u, nil
}

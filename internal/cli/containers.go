package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"time"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/prestart"
	"github.com/containerd/console"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// helpFlag keeps -h free for --hostname, as in Docker.
func helpFlag(cmd *cobra.Command) {
	cmd.Flags().Bool("help", false, "help for "+cmd.Name())
}

func newRun(g *globals) *cobra.Command {
	var r runFlags
	var detach bool
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Create and start a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if r.interactive && r.tty && !detach {
				if _, err := console.ConsoleFromFile(os.Stdin); err != nil {
					return fmt.Errorf("-it: the input device is not a terminal; drop -t, or run it from one: %w", errdefs.ErrInvalidArgument)
				}
			}
			e, c, err := g.create(cmd, &r, args, true)
			if err != nil {
				return err
			}
			if detach {
				if _, err := e.Start(cmd.Context(), c.ID, nil); err != nil {
					// Unlike Docker, a run that could not start leaves
					// nothing behind.
					e.Remove(cmd.Context(), c.ID, container.RemoveOptions{Force: true, Volumes: true})
					return err
				}
				fmt.Println(c.ID)
				return nil
			}
			return runAttached(cmd, e, c, r.interactive, r.tty, true)
		},
	}
	r.register(cmd)
	helpFlag(cmd)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "run in the background and print the container ID")
	return cmd
}

// create resolves the image (pulling it if it is missing) and creates the
// container the flags describe.
// With start, the container's monitor is started first, to come up while
// the container is made.
func (g *globals) create(cmd *cobra.Command, r *runFlags, args []string, start bool) (*container.Engine, *container.Container, error) {
	o, err := r.options(cmd, args)
	if err != nil {
		return nil, nil, err
	}
	policy, err := image.ParsePullPolicy(r.pull)
	if err != nil {
		return nil, nil, fmt.Errorf("--pull: %w", err)
	}
	e, err := g.engine()
	if err != nil {
		return nil, nil, err
	}
	if start {
		g.adoptMonitor(cmd, e)
		// Only a head start: if it fails, Start starts a monitor itself
		// and reports what goes wrong then.
		_ = e.Prestart(cmd.Context())
	}
	var progress *image.Progress
	if isTerminal(os.Stderr) {
		progress = &image.Progress{Step: func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }}
	}
	img, err := e.Images().Ensure(cmd.Context(), args[0], policy, image.PullOptions{Progress: progress})
	if err != nil {
		return nil, nil, err
	}
	o.Image = img
	c, err := e.Create(cmd.Context(), o)
	return e, c, err
}

// adoptMonitor gives e the monitor that package prestart started before
// this command's Go code, if it was started for the same store.
func (g *globals) adoptMonitor(cmd *cobra.Command, e *container.Engine) {
	pid, report, ctl, root, ok := prestart.Monitor()
	if !ok {
		return
	}
	if f := cmd.Flag("root"); (f != nil && f.Changed && root == g.root) || ((f == nil || !f.Changed) && root == "") {
		e.Adopt(pid, report, ctl)
		return
	}
	report.Close()
	ctl.Close() // it exits
}

// runAttached starts c attached to this command's terminal or stdio and
// exits with the container's status.
// With removeOnFail, a container that could not start is removed.
func runAttached(cmd *cobra.Command, e *container.Engine, c *container.Container, interactive, tty, removeOnFail bool) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "attach"), os.NewFile(uintptr(fds[1]), "attach")
	conn, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		theirs.Close()
		return err
	}
	defer conn.Close()
	_, err = e.Start(cmd.Context(), c.ID, theirs)
	theirs.Close()
	if err != nil {
		if removeOnFail {
			e.Remove(cmd.Context(), c.ID, container.RemoveOptions{Force: true, Volumes: true})
		}
		return err
	}
	return attachStreams(cmd.Context(), conn, e, c.ID, interactive, tty)
}

// attachStreams relays this command's stdio over conn until the container
// exits, and returns its exit status as a StatusError.
func attachStreams(ctx context.Context, conn net.Conn, e *container.Engine, id string, interactive, tty bool) error {
	s := container.Streams{Stdout: os.Stdout, Stderr: os.Stderr}
	if interactive {
		s.Stdin = os.Stdin
	}
	if tty {
		if cur, err := console.ConsoleFromFile(os.Stdin); err == nil {
			if err := cur.SetRaw(); err == nil {
				defer cur.Reset()
			}
			resize := make(chan [2]uint16, 1)
			send := func() {
				if sz, err := cur.Size(); err == nil {
					select {
					case resize <- [2]uint16{sz.Height, sz.Width}:
					default:
					}
				}
			}
			send()
			winch := make(chan os.Signal, 1)
			signal.Notify(winch, unix.SIGWINCH)
			defer signal.Stop(winch)
			go func() {
				for range winch {
					send()
				}
			}()
			s.Resize = resize
		}
		// After SetRaw, which turns output translation back on.
		defer rawOutput(os.Stdout)()
	} else {
		// Docker's --sig-proxy: what would stop this command goes to the
		// container instead.
		sigs := make(chan os.Signal, 4)
		signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
		defer signal.Stop(sigs)
		fwd := make(chan int, 4)
		go func() {
			for sig := range sigs {
				fwd <- int(sig.(unix.Signal))
			}
		}()
		s.Signals = fwd
	}
	code, err := container.AttachStreams(conn, s)
	if errors.Is(err, container.ErrDetached) {
		// The monitor went away without saying how the container ended:
		// its state says.
		if _, st, gerr := e.Get(ctx, id); gerr == nil && !st.Running() {
			code, err = st.ExitCode, nil
		}
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return &errdefs.StatusError{Status: code}
	}
	return nil
}

func newCreate(g *globals) *cobra.Command {
	var r runFlags
	cmd := &cobra.Command{
		Use:   "create [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Create a container without starting it",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, c, err := g.create(cmd, &r, args, false)
			if err != nil {
				return err
			}
			fmt.Println(c.ID)
			return nil
		},
	}
	r.register(cmd)
	helpFlag(cmd)
	return cmd
}

func newStart(g *globals) *cobra.Command {
	var all, attach, interactive bool
	cmd := &cobra.Command{
		Use:   "start [flags] CONTAINER...",
		Short: "Start containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			if all {
				ids, err := e.WantRunning(cmd.Context())
				if err != nil {
					return err
				}
				args = append(args, ids...)
			} else if len(args) == 0 {
				return fmt.Errorf("start: name at least one container, or --all: %w", errdefs.ErrInvalidArgument)
			}
			if attach && len(args) == 1 {
				c, st, err := e.Get(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if st.Running() {
					return fmt.Errorf("container %s is already running: use berth attach: %w", c.Name, errdefs.ErrConflict)
				}
				return runAttached(cmd, e, c, interactive, c.Config.Tty, false)
			}
			return eachContainer(args, func(ref string) error {
				_, err := e.Start(cmd.Context(), ref, nil)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&all, "all", false, "start every container whose restart policy wants it running (after a reboot)")
	f.BoolVarP(&attach, "attach", "a", false, "attach to the container's output and wait for it")
	f.BoolVarP(&interactive, "interactive", "i", false, "attach stdin")
	return withRunStatus(cmd, func() bool { return attach })
}

// eachContainer runs fn for each ref, printing the ref on success as
// Docker does, and returns the first error after trying all of them.
func eachContainer(refs []string, fn func(ref string) error) error {
	var first error
	for _, ref := range refs {
		if err := fn(ref); err != nil {
			fmt.Fprintln(os.Stderr, "berth: "+err.Error())
			if first == nil {
				first = err
			}
			continue
		}
		fmt.Println(ref)
	}
	if first != nil {
		return &errdefs.StatusError{Status: errdefs.ExitCode(first)}
	}
	return nil
}

func newStop(g *globals) *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "stop [-t SECONDS] CONTAINER...",
		Short: "Stop running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			var t *time.Duration
			if cmd.Flags().Changed("time") {
				d := time.Duration(timeout) * time.Second
				t = &d
			}
			return eachContainer(args, func(ref string) error { return e.Stop(cmd.Context(), ref, t) })
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before SIGKILL")
	return cmd
}

func newRestart(g *globals) *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "restart [-t SECONDS] CONTAINER...",
		Short: "Restart containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			d := time.Duration(timeout) * time.Second
			return eachContainer(args, func(ref string) error {
				if err := e.Stop(cmd.Context(), ref, &d); err != nil {
					return err
				}
				_, err := e.Start(cmd.Context(), ref, nil)
				return err
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before SIGKILL")
	return cmd
}

func newKill(g *globals) *cobra.Command {
	var sig string
	cmd := &cobra.Command{
		Use:   "kill [-s SIGNAL] CONTAINER...",
		Short: "Send a signal to containers (SIGKILL by default)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			return eachContainer(args, func(ref string) error { return e.Kill(cmd.Context(), ref, sig) })
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "SIGKILL", "signal to send")
	return cmd
}

func newRm(g *globals) *cobra.Command {
	var o container.RemoveOptions
	cmd := &cobra.Command{
		Use:   "rm [-f] [-v] CONTAINER...",
		Short: "Remove containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			return eachContainer(args, func(ref string) error { return e.Remove(cmd.Context(), ref, o) })
		},
	}
	cmd.Flags().BoolVarP(&o.Force, "force", "f", false, "kill a running container first")
	cmd.Flags().BoolVarP(&o.Volumes, "volumes", "v", false, "remove the container's anonymous volumes")
	return cmd
}

func newWait(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER...",
		Short: "Wait for containers to stop and print their exit statuses",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			for _, ref := range args {
				code, err := e.Wait(cmd.Context(), ref)
				if err != nil {
					return err
				}
				fmt.Println(code)
			}
			return nil
		},
	}
}

func newAttach(g *globals) *cobra.Command {
	var noStdin bool
	cmd := &cobra.Command{
		Use:   "attach CONTAINER",
		Short: "Attach to a running container's stdio",
		Args:  exactArg("container"),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			conn, c, err := e.Attach(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer conn.Close()
			return attachStreams(cmd.Context(), conn, e, c.ID, c.Config.OpenStdin && !noStdin, c.Config.Tty)
		},
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "do not attach stdin")
	return cmd
}

// newContainerMonitor is the hidden command a container's monitor runs as.
func newContainerMonitor(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "container-monitor ID",
		Hidden: true,
		Args:   exactArg("container ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			return monitor.Run(cmd.Context(), e, args[0])
		},
	}
}

// rawOutput stops the terminal f, if it is one, from translating what is
// written to it (OPOST: a newline into a carriage return and a newline)
// until the function it returns is called. A container's terminal has
// translated its program's output already; a second translation would end
// its lines with "\r\r\n". (containerd/console's SetRaw leaves OPOST
// on, for the command's own messages, so raw input does not do it.)
func rawOutput(f *os.File) (restore func()) {
	fd := int(f.Fd())
	saved, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {}
	}
	raw := *saved
	raw.Oflag &^= unix.OPOST
	if unix.IoctlSetTermios(fd, unix.TCSETS, &raw) != nil {
		return func() {}
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, saved) }
}

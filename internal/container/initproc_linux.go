package container

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"

	"golang.org/x/sys/unix"
)

// InitMain is the init that --init puts in front of the container's
// command (berth itself, bind-mounted at /dev/berth-init): as PID 1 it
// forwards the signals it gets to the command, reaps the zombies that
// orphans leave, and exits with the command's status. Written here rather
// than shipping tini because berth is one static binary already there.
func InitMain(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "berth-init: no command")
		return 127
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-init: %v\n", err)
		return 127
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	p, err := os.StartProcess(path, args, &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-init: %v\n", err)
		return 126
	}
	for sig := range sigs {
		s := sig.(unix.Signal)
		if s != unix.SIGCHLD {
			if s != unix.SIGURG { // the Go runtime's own preemption signal
				unix.Kill(p.Pid, s)
			}
			continue
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			if pid == p.Pid {
				return exitCode(ws)
			}
		}
	}
	return 0
}

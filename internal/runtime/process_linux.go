package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var rlimitNames = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC,
	"RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

// setRlimits sets the hard limits while init is still privileged, with the
// soft limits at the hard ones: init has yet to allocate (libseccomp, the Go
// heap) and a soft RLIMIT_AS or RLIMIT_DATA below its own footprint would
// fail that. RLIMIT_NPROC gets its soft limit now, as setuid checks it.
// lowerSoftRlimits sets the other soft limits just before exec.
func setRlimits(limits []specs.POSIXRlimit) error {
	for _, l := range limits {
		cur := l.Hard
		if l.Type == "RLIMIT_NPROC" {
			cur = l.Soft
		}
		// syscall.Setrlimit (not x/sys/unix) so that the Go runtime forgets
		// the RLIMIT_NOFILE it would otherwise restore at exec.
		res, ok := rlimitNames[l.Type]
		if !ok {
			return fmt.Errorf("process.rlimits: unknown rlimit %q", l.Type)
		}
		lim := &syscall.Rlimit{Cur: cur, Max: l.Hard}
		if err := syscall.Setrlimit(res, lim); err != nil {
			return fmt.Errorf("process.rlimits %s: %w", l.Type, err)
		}
	}
	return nil
}

// lowerSoftRlimits lowers the soft limits that setRlimits left at the hard
// ones; lowering a soft limit needs no privilege.
func lowerSoftRlimits(limits []specs.POSIXRlimit) error {
	for _, l := range limits {
		if l.Soft == l.Hard || l.Type == "RLIMIT_NPROC" {
			continue
		}
		lim := &syscall.Rlimit{Cur: l.Soft, Max: l.Hard}
		if err := syscall.Setrlimit(rlimitNames[l.Type], lim); err != nil {
			return fmt.Errorf("process.rlimits %s: %w", l.Type, err)
		}
	}
	return nil
}

// setUser switches to the process's user and groups. Capabilities survive
// the switch (PR_SET_KEEPCAPS) and are set afterwards by capSet.apply.
func setUser(u specs.User) error {
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	groups := make([]int, len(u.AdditionalGids))
	for i, g := range u.AdditionalGids {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil && !(errors.Is(err, unix.EPERM) && len(groups) == 0) {
		return fmt.Errorf("process.user.additionalGids: %w", err)
	}
	if err := syscall.Setgid(int(u.GID)); err != nil {
		return fmt.Errorf("process.user.gid %d: %w", u.GID, err)
	}
	if err := syscall.Setuid(int(u.UID)); err != nil {
		return fmt.Errorf("process.user.uid %d: %w", u.UID, err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	if u.Umask != nil {
		unix.Umask(int(*u.Umask))
	} else {
		unix.Umask(0o022)
	}
	return nil
}

// processEnv returns the process's environment with HOME filled in from
// the container's /etc/passwd when the spec leaves it out, as runc does.
func processEnv(p *specs.Process) []string {
	env := p.Env
	for _, e := range env {
		if strings.HasPrefix(e, "HOME=") {
			return env
		}
	}
	home := "/"
	if users, err := user.ParsePasswdFileFilter("/etc/passwd", func(u user.User) bool { return u.Uid == int(p.User.UID) }); err == nil && len(users) > 0 && users[0].Home != "" {
		home = users[0].Home
	}
	return append(append([]string{}, env...), "HOME="+home)
}

// lookPath finds name in the PATH of env, inside the current root.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", fmt.Errorf("process.args[0] %q: %w", name, err)
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			path = e[5:]
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("process.args[0] %q: executable file not found in $PATH", name)
}

func executable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	if st.Mode()&0o111 == 0 {
		return errors.New("permission denied")
	}
	return nil
}

// closeExtraFDs marks every descriptor from 3+preserve up close-on-exec.
func closeExtraFDs(preserve int) error {
	if err := unix.CloseRange(uint(3+preserve), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("close descriptors: %w", err)
	}
	return nil
}

func setOOMScoreAdj(p *specs.Process) error {
	if p.OOMScoreAdj == nil {
		return nil
	}
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0); err != nil {
		return fmt.Errorf("process.oomScoreAdj: %w", err)
	}
	return nil
}

package container

import (
	"os"
	"strconv"
	"strings"
)

// bootID identifies the current boot: a process recorded in an earlier
// boot is gone whatever its pid is now.
func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

// startTime returns pid's start time in clock ticks after boot, or 0 if
// there is no such process.
func startTime(pid int) uint64 {
	n, _ := procStat(pid)
	return n
}

// procStat returns pid's start time in clock ticks after boot and its
// state ('R', 'S', …, 'Z' for a zombie), or 0 if there is no such process.
func procStat(pid int) (start uint64, state byte) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0
	}
	// The command name (field 2) may hold spaces and parentheses: count
	// fields after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "" {
		return 0, 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n, f[0][0]
}

// Self identifies the calling process, as State.Monitor records a
// container's monitor.
func Self() Process {
	pid := os.Getpid()
	return Process{Pid: pid, StartTime: startTime(pid), BootID: bootID()}
}

// alive reports whether p is still the process it was recorded as, and
// has not exited: a zombie, which its parent has yet to collect, is not.
func (p Process) alive() bool {
	if p.Pid <= 0 || p.BootID != bootID() {
		return false
	}
	st, state := procStat(p.Pid)
	return st != 0 && st == p.StartTime && state != 'Z' && state != 'X'
}

// aliveSameBoot reports whether a process p.Pid exists in the boot boot
// and has not exited (a zombie has).
func (p Process) aliveSameBoot(boot string) bool {
	if p.Pid <= 0 || boot != bootID() {
		return false
	}
	st, state := procStat(p.Pid)
	return st != 0 && state != 'Z' && state != 'X'
}

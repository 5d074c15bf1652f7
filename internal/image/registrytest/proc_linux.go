package registrytest

import "syscall"

// sysProcAttr makes the kernel kill the registry if the test binary dies
// without running its cleanups (a -timeout panic, SIGKILL).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

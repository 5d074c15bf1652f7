package runtime

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	seccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

var seccompArchs = map[specs.Arch]string{
	specs.ArchX86: "x86", specs.ArchX86_64: "amd64", specs.ArchX32: "x32",
	specs.ArchARM: "arm", specs.ArchAARCH64: "arm64", specs.ArchMIPS: "mips",
	specs.ArchMIPS64: "mips64", specs.ArchMIPS64N32: "mips64n32", specs.ArchMIPSEL: "mipsel",
	specs.ArchMIPSEL64: "mipsel64", specs.ArchMIPSEL64N32: "mipsel64n32", specs.ArchPPC: "ppc",
	specs.ArchPPC64: "ppc64", specs.ArchPPC64LE: "ppc64le", specs.ArchS390: "s390",
	specs.ArchS390X: "s390x", specs.ArchRISCV64: "riscv64",
}

var seccompOps = map[specs.LinuxSeccompOperator]seccomp.ScmpCompareOp{
	specs.OpNotEqual: seccomp.CompareNotEqual, specs.OpLessThan: seccomp.CompareLess,
	specs.OpLessEqual: seccomp.CompareLessOrEqual, specs.OpEqualTo: seccomp.CompareEqual,
	specs.OpGreaterEqual: seccomp.CompareGreaterEqual, specs.OpGreaterThan: seccomp.CompareGreater,
	specs.OpMaskedEqual: seccomp.CompareMaskedEqual,
}

func seccompAction(a specs.LinuxSeccompAction, errno *uint) (seccomp.ScmpAction, error) {
	ret := int16(unix.EPERM)
	if errno != nil {
		ret = int16(*errno)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return seccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return seccomp.ActKillProcess, nil
	case specs.ActTrap:
		return seccomp.ActTrap, nil
	case specs.ActErrno:
		return seccomp.ActErrno.SetReturnCode(ret), nil
	case specs.ActTrace:
		return seccomp.ActTrace.SetReturnCode(ret), nil
	case specs.ActAllow:
		return seccomp.ActAllow, nil
	case specs.ActLog:
		return seccomp.ActLog, nil
	}
	return seccomp.ActInvalid, fmt.Errorf("seccomp action %q is not supported", a)
}

// loadSeccomp builds the spec's filter with libseccomp and loads it into
// the calling thread. It leaves no_new_privs alone: that is the spec's
// process.noNewPrivileges to decide.
func loadSeccomp(s *specs.LinuxSeccomp) error {
	if s == nil {
		return nil
	}
	def, err := seccompAction(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return fmt.Errorf("linux.seccomp.defaultAction: %w", err)
	}
	f, err := seccomp.NewFilter(def)
	if err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	defer f.Release()
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	for _, a := range s.Architectures {
		name, ok := seccompArchs[a]
		if !ok {
			return fmt.Errorf("linux.seccomp.architectures: unknown %q", a)
		}
		arch, err := seccomp.GetArchFromString(name)
		if err != nil {
			return fmt.Errorf("linux.seccomp.architectures: %w", err)
		}
		if err := f.AddArch(arch); err != nil {
			return fmt.Errorf("linux.seccomp.architectures %s: %w", a, err)
		}
	}
	for _, flag := range s.Flags {
		if flag == specs.LinuxSeccompFlagSpecAllow {
			_ = f.SetSSB(true)
		}
	}
	for i, sc := range s.Syscalls {
		act, err := seccompAction(sc.Action, sc.ErrnoRet)
		if err != nil {
			return fmt.Errorf("linux.seccomp.syscalls[%d]: %w", i, err)
		}
		if act == def {
			continue
		}
		var conds []seccomp.ScmpCondition
		for _, a := range sc.Args {
			op, ok := seccompOps[a.Op]
			if !ok {
				return fmt.Errorf("linux.seccomp.syscalls[%d]: unknown operator %q", i, a.Op)
			}
			vals := []uint64{a.Value}
			if a.Op == specs.OpMaskedEqual {
				vals = append(vals, a.ValueTwo)
			}
			c, err := seccomp.MakeCondition(a.Index, op, vals...)
			if err != nil {
				return fmt.Errorf("linux.seccomp.syscalls[%d]: %w", i, err)
			}
			conds = append(conds, c)
		}
		for _, name := range sc.Names {
			call, err := seccomp.GetSyscallFromName(name)
			if err != nil {
				continue // not a syscall of this architecture
			}
			if len(conds) == 0 {
				err = f.AddRule(call, act)
			} else if err = f.AddRuleConditional(call, act, conds); err != nil {
				// libseccomp refuses two conditions on one argument in a
				// rule; add them as alternatives instead, as runc does.
				for _, c := range conds {
					if err = f.AddRuleConditional(call, act, []seccomp.ScmpCondition{c}); err != nil {
						break
					}
				}
			}
			if err != nil {
				return fmt.Errorf("linux.seccomp.syscalls[%d] %s: %w", i, name, err)
			}
		}
	}
	if err := f.Load(); err != nil {
		return fmt.Errorf("seccomp: load filter: %w", err)
	}
	return nil
}

package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

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

const (
	seccompFlagSpecAllow    = 4 // SECCOMP_FILTER_FLAG_SPEC_ALLOW
	seccompCacheMaxFilesize = 1 << 20
)

// seccompProgram compiles s to classic BPF with libseccomp, or takes the
// program from cacheDir if the same filter was compiled before with the
// same libseccomp on the same kernel: Docker's default profile takes tens
// of milliseconds to compile, on every container start otherwise. It also
// returns the flags to load it with.
func seccompProgram(cacheDir string, s *specs.LinuxSeccomp) ([]byte, uint, error) {
	var flags uint
	if slices.Contains(s.Flags, specs.LinuxSeccompFlagSpecAllow) {
		flags |= seccompFlagSpecAllow
	}
	key, err := json.Marshal(s)
	if err != nil {
		return nil, 0, err
	}
	var uts unix.Utsname
	unix.Uname(&uts)
	major, minor, micro := seccomp.GetLibraryVersion()
	api, _ := seccomp.GetAPI()
	h := sha256.New()
	fmt.Fprintf(h, "%d.%d.%d api %d kernel %s\n", major, minor, micro, api, unix.ByteSliceToString(uts.Release[:]))
	h.Write(key)
	path := filepath.Join(cacheDir, hex.EncodeToString(h.Sum(nil)))
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 && len(b)%8 == 0 && len(b) < seccompCacheMaxFilesize {
		return b, flags, nil
	}
	f, err := buildSeccomp(s)
	if err != nil {
		return nil, 0, err
	}
	defer f.Release()
	mem, err := unix.MemfdCreate("seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, 0, err
	}
	mf := os.NewFile(uintptr(mem), "seccomp-bpf")
	defer mf.Close()
	if err := f.ExportBPF(mf); err != nil {
		return nil, 0, fmt.Errorf("seccomp: export: %w", err)
	}
	b, err := io.ReadAll(io.NewSectionReader(mf, 0, seccompCacheMaxFilesize))
	if err != nil || len(b) == 0 || len(b)%8 != 0 {
		return nil, 0, fmt.Errorf("seccomp: export: %d bytes: %v", len(b), err)
	}
	// Best effort: a cache that cannot be written only costs time.
	if os.MkdirAll(cacheDir, 0o700) == nil {
		tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
		if os.WriteFile(tmp, b, 0o600) == nil && os.Rename(tmp, path) != nil {
			os.Remove(tmp)
		}
	}
	return b, flags, nil
}

// buildSeccomp makes the libseccomp filter for s.
func buildSeccomp(s *specs.LinuxSeccomp) (*seccomp.ScmpFilter, error) {
	def, err := seccompAction(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp.defaultAction: %w", err)
	}
	f, err := seccomp.NewFilter(def)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Release()
		}
	}()
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	for _, a := range s.Architectures {
		name, ok := seccompArchs[a]
		if !ok {
			return nil, fmt.Errorf("linux.seccomp.architectures: unknown %q", a)
		}
		arch, err := seccomp.GetArchFromString(name)
		if err != nil {
			return nil, fmt.Errorf("linux.seccomp.architectures: %w", err)
		}
		if err := f.AddArch(arch); err != nil {
			return nil, fmt.Errorf("linux.seccomp.architectures %s: %w", a, err)
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
			return nil, fmt.Errorf("linux.seccomp.syscalls[%d]: %w", i, err)
		}
		if act == def {
			continue
		}
		var conds []seccomp.ScmpCondition
		for _, a := range sc.Args {
			op, ok := seccompOps[a.Op]
			if !ok {
				return nil, fmt.Errorf("linux.seccomp.syscalls[%d]: unknown operator %q", i, a.Op)
			}
			vals := []uint64{a.Value}
			if a.Op == specs.OpMaskedEqual {
				vals = append(vals, a.ValueTwo)
			}
			c, err := seccomp.MakeCondition(a.Index, op, vals...)
			if err != nil {
				return nil, fmt.Errorf("linux.seccomp.syscalls[%d]: %w", i, err)
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
				return nil, fmt.Errorf("linux.seccomp.syscalls[%d] %s: %w", i, name, err)
			}
		}
	}
	ok = true
	return f, nil
}

// compileSeccomp puts the spec's seccomp filter, compiled (or taken from
// the cache beside the state root), into cfg for init to load.
func (r *Runtime) compileSeccomp(cfg *initConfig) error {
	if cfg.Spec == nil || cfg.Spec.Linux == nil || cfg.Spec.Linux.Seccomp == nil {
		return nil
	}
	cache := filepath.Join(filepath.Dir(r.Root), filepath.Base(r.Root)+".seccomp")
	bpf, flags, err := seccompProgram(cache, cfg.Spec.Linux.Seccomp)
	if err != nil {
		return err
	}
	cfg.SeccompBPF, cfg.SeccompFlags = bpf, flags
	return nil
}

package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// LoadSpec reads and validates BUNDLE/config.json. Errors name the field
// that is wrong.
func LoadSpec(bundle string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("bundle %q has no config.json: %w", bundle, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("bundle %q: %w", bundle, err)
	}
	return ParseSpec(data)
}

// ParseSpec decodes and validates a runtime-spec configuration.
func ParseSpec(data []byte) (*specs.Spec, error) {
	var s specs.Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return nil, fmt.Errorf("config.json: field %s: cannot use a JSON %s as %s: %w", te.Field, te.Value, te.Type, errdefs.ErrInvalidArgument)
		case errors.As(err, &se):
			return nil, fmt.Errorf("config.json: malformed JSON at byte %d: %v: %w", se.Offset, err, errdefs.ErrInvalidArgument)
		}
		return nil, fmt.Errorf("config.json: malformed JSON: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if err := validateSpec(&s); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	return &s, nil
}

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("field %s: %s: %w", field, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

var namespaceTypes = map[specs.LinuxNamespaceType]bool{
	specs.PIDNamespace: true, specs.NetworkNamespace: true, specs.MountNamespace: true,
	specs.IPCNamespace: true, specs.UTSNamespace: true, specs.UserNamespace: true,
	specs.CgroupNamespace: true, specs.TimeNamespace: true,
}

func validateSpec(s *specs.Spec) error {
	if s.Version == "" {
		return invalid("ociVersion", "missing")
	}
	if !strings.HasPrefix(s.Version, "1.") {
		return invalid("ociVersion", "unsupported version %q (berth supports 1.x)", s.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		return invalid("root.path", "missing")
	}
	if s.Process != nil {
		if err := ValidateProcess(s.Process); err != nil {
			return err
		}
	}
	for i, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return invalid(fmt.Sprintf("mounts[%d].destination", i), "%q is not an absolute path", m.Destination)
		}
	}
	if s.Linux == nil {
		return nil
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for i, ns := range s.Linux.Namespaces {
		field := fmt.Sprintf("linux.namespaces[%d]", i)
		if !namespaceTypes[ns.Type] {
			return invalid(field+".type", "unknown namespace type %q", ns.Type)
		}
		if seen[ns.Type] {
			return invalid(field+".type", "namespace %q listed twice", ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" && !filepath.IsAbs(ns.Path) {
			return invalid(field+".path", "%q is not an absolute path", ns.Path)
		}
	}
	if (len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0) && !seen[specs.UserNamespace] {
		return invalid("linux.uidMappings", "ID mappings need a user namespace in linux.namespaces")
	}
	for i, d := range s.Linux.Devices {
		field := fmt.Sprintf("linux.devices[%d]", i)
		if !filepath.IsAbs(d.Path) {
			return invalid(field+".path", "%q is not an absolute path", d.Path)
		}
		switch d.Type {
		case "c", "b", "u", "p":
		default:
			return invalid(field+".type", "%q is not one of c, b, u, p", d.Type)
		}
	}
	for i, p := range s.Linux.MaskedPaths {
		if !filepath.IsAbs(p) {
			return invalid(fmt.Sprintf("linux.maskedPaths[%d]", i), "%q is not an absolute path", p)
		}
	}
	for i, p := range s.Linux.ReadonlyPaths {
		if !filepath.IsAbs(p) {
			return invalid(fmt.Sprintf("linux.readonlyPaths[%d]", i), "%q is not an absolute path", p)
		}
	}
	for key := range s.Linux.Sysctl {
		if err := checkSysctl(key, seen); err != nil {
			return err
		}
	}
	switch s.Linux.RootfsPropagation {
	case "", "shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate", "runbindable":
	default:
		return invalid("linux.rootfsPropagation", "unknown propagation %q", s.Linux.RootfsPropagation)
	}
	return nil
}

var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// checkSysctl allows only sysctls that belong to a namespace the container
// has of its own: any other would change the host (kernel.core_pattern is a
// classic way out of a container).
func checkSysctl(key string, ns map[specs.LinuxNamespaceType]bool) error {
	field := "linux.sysctl." + key
	k := strings.ReplaceAll(key, "/", ".")
	var need specs.LinuxNamespaceType
	switch {
	case ipcSysctls[k] || strings.HasPrefix(k, "fs.mqueue."):
		need = specs.IPCNamespace
	case strings.HasPrefix(k, "net."):
		need = specs.NetworkNamespace
	case k == "kernel.hostname" || k == "kernel.domainname":
		need = specs.UTSNamespace
	default:
		return invalid(field, "not in a kernel namespace the container owns; it would change the host")
	}
	if !ns[need] {
		return invalid(field, "needs a %s namespace in linux.namespaces", need)
	}
	return nil
}

// ValidateProcess checks a process definition (config.json's process, or
// exec's --process file). Errors name the field.
func ValidateProcess(p *specs.Process) error {
	if len(p.Args) == 0 {
		return invalid("process.args", "empty; it must name the program to run")
	}
	if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
		return invalid("process.cwd", "%q is not an absolute path", p.Cwd)
	}
	// 4294967295 is (uid_t)-1, which the kernel reads as "unchanged".
	if p.User.UID == math.MaxUint32 {
		return invalid("process.user.uid", "%d is not a valid user ID", p.User.UID)
	}
	if p.User.GID == math.MaxUint32 || slices.Contains(p.User.AdditionalGids, math.MaxUint32) {
		return invalid("process.user.gid", "%d is not a valid group ID", uint32(math.MaxUint32))
	}
	for i, e := range p.Env {
		if !strings.Contains(e, "=") {
			return invalid(fmt.Sprintf("process.env[%d]", i), "%q is not KEY=VALUE", e)
		}
	}
	return validateProcessPlatform(p)
}

// namespace returns the spec's entry for typ, if any.
func namespace(s *specs.Spec, typ specs.LinuxNamespaceType) (specs.LinuxNamespace, bool) {
	if s.Linux == nil {
		return specs.LinuxNamespace{}, false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == typ {
			return ns, true
		}
	}
	return specs.LinuxNamespace{}, false
}

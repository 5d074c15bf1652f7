package runtime

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// initWireConstants pairs every constant of boot/boot.h with the Go
// constant of initwire_linux.go that must have the same value. A constant
// added on one side only fails TestInitWireConstants until it is added on
// the other side and here.
var initWireConstants = []struct {
	c, goName string
	v         int
}{
	{"MSG_CONFIG", "msgConfig", msgConfig},
	{"MSG_CGROUP", "msgCgroup", msgCgroup},
	{"MSG_HOOKS", "msgHooks", msgHooks},
	{"MSG_RESUME", "msgResume", msgResume},
	{"MSG_READY", "msgReady", msgReady},
	{"MSG_ERROR", "msgError", msgError},

	{"MODE_CREATE", "modeCreate", modeCreate},
	{"MODE_EXEC", "modeExec", modeExec},

	{"F_NO_PIVOT", "flagNoPivot", flagNoPivot},
	{"F_NO_KEYRING", "flagNoKeyring", flagNoKeyring},
	{"F_TERMINAL", "flagTerminal", flagTerminal},
	{"F_HOOKS", "flagHooks", flagHooks},
	{"F_NEW_USERNS", "flagNewUserNS", flagNewUserNS},
	{"F_UNSHARE_CGROUPNS", "flagUnshareCgroupNS", flagUnshareCgroupNS},
	{"F_MOUNT_NS", "flagMountNS", flagMountNS},
	{"F_NO_NEW_PRIVS", "flagNoNewPrivs", flagNoNewPrivs},
	{"F_ROOT_READONLY", "flagRootReadonly", flagRootReadonly},
	{"F_DEVICES", "flagDevices", flagDevices},
	{"F_UMASK", "flagUmask", flagUmask},
	{"F_OOM_SCORE", "flagOOMScore", flagOOMScore},
	{"F_CGROUPNS", "flagCgroupNS", flagCgroupNS},
	{"F_HOSTNAME", "flagHostname", flagHostname},
	{"F_DOMAINNAME", "flagDomainname", flagDomainname},
	{"F_FINAL_PROPAGATION", "flagFinalPropagation", flagFinalPropagation},
	{"F_LOOPBACK", "flagLoopback", flagLoopback},

	{"MOUNT_PLAIN", "mountPlain", mountPlain},
	{"MOUNT_BIND", "mountBind", mountBind},
	{"MOUNT_CGROUP", "mountCgroup", mountCgroup},
	{"MOUNT_MAX_PROPS", "mountMaxProps", mountMaxProps},

	{"CAP_SET_BOUNDING", "capSetBounding", capSetBounding},
	{"CAP_SET_EFFECTIVE", "capSetEffective", capSetEffective},
	{"CAP_SET_PERMITTED", "capSetPermitted", capSetPermitted},
	{"CAP_SET_INHERITABLE", "capSetInheritable", capSetInheritable},
	{"CAP_SET_AMBIENT", "capSetAmbient", capSetAmbient},
	{"CAP_SETS", "capSets", capSets},
}

// goOnlyConstants are constants of initwire_linux.go that never cross the
// wire.
var goOnlyConstants = map[string]bool{"msgNone": true}

// The init wire format's constants are written twice, in C for init and
// in Go for the runtime; they must agree name for name.
func TestInitWireConstants(t *testing.T) {
	header, err := os.ReadFile("boot/boot.h")
	if err != nil {
		t.Fatal(err)
	}
	cConsts, err := parseHeaderConstants(string(header))
	if err != nil {
		t.Fatalf("boot/boot.h: %v", err)
	}
	goConsts := fileConstants(t, "initwire_linux.go")

	paired := map[string]bool{}
	for _, k := range initWireConstants {
		paired[k.c] = true
		cv, ok := cConsts[k.c]
		switch {
		case !ok:
			t.Errorf("%s (Go %s = %d) is not in boot.h", k.c, k.goName, k.v)
		case cv != k.v:
			t.Errorf("%s is %d in boot.h but Go's %s is %d", k.c, cv, k.goName, k.v)
		}
		if !goConsts[k.goName] {
			t.Errorf("%s is no longer a constant of initwire_linux.go", k.goName)
		}
	}
	for name, v := range cConsts {
		if !paired[name] {
			t.Errorf("boot.h's %s = %d has no Go constant in initWireConstants", name, v)
		}
	}
	pairedGo := map[string]bool{}
	for _, k := range initWireConstants {
		pairedGo[k.goName] = true
	}
	for name := range goConsts {
		if !pairedGo[name] && !goOnlyConstants[name] {
			t.Errorf("initwire_linux.go's %s has no boot.h constant in initWireConstants", name)
		}
	}
}

// The header parser understands what boot.h writes.
func TestParseHeaderConstants(t *testing.T) {
	got, err := parseHeaderConstants(`
#ifndef G
#define G
#define LIMIT 0x10 /* a comment */
enum { A = 'C', /* 'x', */ B, C = 1 << 3, D, // E = 9,
	F = C, };
enum { X };
#endif`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"LIMIT": 16, "A": 'C', "B": 'D', "C": 8, "D": 9, "F": 8, "X": 0}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	if _, err := parseHeaderConstants("enum { A = sizeof(int) };"); err == nil {
		t.Error("an expression the parser does not know was accepted")
	}
}

var (
	cComment = regexp.MustCompile(`(?s)/\*.*?\*/|//[^\n]*`)
	cEnum    = regexp.MustCompile(`(?s)\benum\s*\{(.*?)\}`)
	cDefine  = regexp.MustCompile(`(?m)^#define\s+(\w+)[ \t]+(\S.*)$`)
)

// parseHeaderConstants returns the values of a C header's enum constants
// and of its #defines that have a value. Values are integers, character
// literals, earlier constants, or one "a << b" of those.
func parseHeaderConstants(src string) (map[string]int, error) {
	src = cComment.ReplaceAllString(src, "")
	consts := map[string]int{}
	eval := func(expr string) (int, error) {
		if l, r, ok := strings.Cut(expr, "<<"); ok {
			a, err := cValue(consts, l)
			if err != nil {
				return 0, err
			}
			b, err := cValue(consts, r)
			return a << b, err
		}
		return cValue(consts, expr)
	}
	for _, m := range cDefine.FindAllStringSubmatch(src, -1) {
		v, err := eval(m[2])
		if err != nil {
			return nil, err
		}
		consts[m[1]] = v
	}
	for _, m := range cEnum.FindAllStringSubmatch(src, -1) {
		next := 0
		for item := range strings.SplitSeq(m[1], ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			name, expr, hasValue := strings.Cut(item, "=")
			name = strings.TrimSpace(name)
			if hasValue {
				v, err := eval(expr)
				if err != nil {
					return nil, err
				}
				next = v
			}
			if _, dup := consts[name]; dup {
				return nil, fmt.Errorf("%s is defined twice", name)
			}
			consts[name] = next
			next++
		}
	}
	return consts, nil
}

// cValue is one term of a constant expression.
func cValue(consts map[string]int, s string) (int, error) {
	s = strings.TrimSpace(s)
	if len(s) == 3 && s[0] == '\'' && s[2] == '\'' {
		return int(s[1]), nil
	}
	if v, ok := consts[s]; ok {
		return v, nil
	}
	v, err := strconv.ParseInt(s, 0, 64)
	return int(v), err
}

// fileConstants returns the names of the constants a Go file declares.
func fileConstants(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
			for _, s := range g.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					names[n.Name] = true
				}
			}
		}
	}
	return names
}

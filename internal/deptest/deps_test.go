package deptest

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// A rule says what the packages it matches may depend on.
type rule struct {
	why    string   // the reason, shown when the rule is broken
	pkgs   []string // the packages the rule is about (patterns, see match)
	except []string // packages of pkgs it leaves out
	linked bool     // check every package they link, not only what they import
	deny   []string // berth packages they must not depend on
	allow  []string // if set, the only berth packages they may depend on
}

// rules is the module's layering (DESIGN.md, "Packages"). To add one,
// add an entry; a rule whose packages do not exist yet passes until they
// do.
var rules = []rule{
	{
		why:    "the OCI runtime binary links no engine, image or cluster code",
		pkgs:   []string{"cmd/berth-runtime"},
		linked: true,
		deny: []string{"internal/image/...", "internal/container/...", "internal/network/...",
			"internal/build/...", "internal/snapshot/...", "internal/cluster/..."},
	},
	{
		why:    "the runtime depends on nothing of berth but errdefs",
		pkgs:   []string{"internal/runtime/..."},
		linked: true,
		allow:  []string{"internal/errdefs", "internal/runtime/..."},
	},
	{
		why: "the engine never depends on the cluster",
		pkgs: []string{"internal/container/...", "internal/image/...", "internal/network/...", "internal/snapshot/...",
			"internal/build/...", "internal/runtime/...", "internal/fstree/..."},
		linked: true,
		deny:   []string{"internal/cluster/..."},
	},
	{
		why:    "only cluster/agent imports the engine",
		pkgs:   []string{"internal/cluster/..."},
		except: []string{"internal/cluster/agent/..."},
		deny:   []string{"internal/container/...", "internal/image/...", "internal/network/..."},
	},
	{
		why:    "cluster/api is plain types: nothing of berth but errdefs",
		pkgs:   []string{"internal/cluster/api/..."},
		linked: true,
		allow:  []string{"internal/errdefs", "internal/cluster/api/..."},
	},
}

func TestDependencies(t *testing.T) {
	all := packages(t)
	paths := slices.Sorted(maps.Keys(all))
	for _, r := range rules {
		matched := 0
		for _, path := range paths {
			p := all[path]
			if !matchAny(r.pkgs, path) || matchAny(r.except, path) {
				continue
			}
			matched++
			deps := p.Imports
			if r.linked {
				deps = p.Deps
			}
			for _, dep := range deps {
				if !strings.HasPrefix(dep, module+"/") {
					continue // the standard library and other modules
				}
				if matchAny(r.deny, dep) || (r.allow != nil && !matchAny(r.allow, dep)) {
					t.Errorf("%s depends on %s (%s): %s", rel(path), rel(dep), chain(all, path, dep), r.why)
				}
			}
		}
		if matched == 0 {
			t.Logf("no package yet for the rule %q", r.why)
		}
	}
}

// chain returns the imports that lead from one package to another, as
// "a → b → c".
func chain(all map[string]*pkg, from, to string) string {
	prev := map[string]string{from: ""}
	for queue := []string{from}; len(queue) > 0; queue = queue[1:] {
		p := all[queue[0]]
		if p == nil {
			continue
		}
		for _, next := range p.Imports {
			if _, seen := prev[next]; seen {
				continue
			}
			prev[next] = p.ImportPath
			if next == to {
				var path []string
				for at := to; at != ""; at = prev[at] {
					path = append(path, rel(at))
				}
				slices.Reverse(path)
				return strings.Join(path, " → ")
			}
			queue = append(queue, next)
		}
	}
	return rel(from) + " → … → " + rel(to)
}

// The patterns mean what the rules take them to mean.
func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		want          bool
	}{
		{"internal/image", module + "/internal/image", true},
		{"internal/image", module + "/internal/image/registrytest", false},
		{"internal/image/...", module + "/internal/image", true},
		{"internal/image/...", module + "/internal/image/registrytest", true},
		{"internal/image/...", module + "/internal/imagex", false},
		{"internal/cluster/...", "example.com/internal/cluster/api", false},
	} {
		if got := match(tc.pattern, tc.path); got != tc.want {
			t.Errorf("match(%q, %q) = %v", tc.pattern, tc.path, got)
		}
	}
}

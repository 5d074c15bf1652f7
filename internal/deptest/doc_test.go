package deptest

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// Every package of the module has a package doc comment, which `go doc`
// shows; a library's begins "Package NAME", as the standard library's do.
// A comment separated from the package clause by a blank line is not one.
func TestPackageDocs(t *testing.T) {
	all := packages(t)
	for _, path := range slices.Sorted(maps.Keys(all)) {
		switch p := all[path]; {
		case p.Doc == "":
			t.Errorf("%s has no package doc comment (write one, with no blank line before the package clause)", rel(path))
		case p.Name != "main" && !strings.HasPrefix(p.Doc, "Package "+p.Name+" "):
			t.Errorf("%s: the package comment should begin %q, not %q", rel(path), "Package "+p.Name, p.Doc)
		}
	}
}

package deptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// module is berth's module path; patterns in this package are relative to
// it.
const module = "github.com/berth-dev/berth"

// pkg is what the tests read of one package from go list.
type pkg struct {
	ImportPath string
	Name       string
	Doc        string
	Imports    []string // direct imports
	Deps       []string // every package it links, transitively
}

var (
	graphOnce sync.Once
	graph     map[string]*pkg
	graphErr  error
)

// packages returns every package of the module by import path, from one
// `go list` run shared by the tests.
func packages(t *testing.T) map[string]*pkg {
	t.Helper()
	graphOnce.Do(func() {
		cmd := exec.Command("go", "list", "-json=ImportPath,Name,Doc,Imports,Deps", module+"/...")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			graphErr = errors.New("go list: " + err.Error() + ": " + stderr.String())
			return
		}
		graph = map[string]*pkg{}
		for dec := json.NewDecoder(bytes.NewReader(out)); ; {
			p := new(pkg)
			if err := dec.Decode(p); err == io.EOF {
				break
			} else if err != nil {
				graphErr = err
				return
			}
			graph[p.ImportPath] = p
		}
	})
	if graphErr != nil {
		t.Fatal(graphErr)
	}
	return graph
}

// match reports whether importPath is matched by pattern, a path relative
// to the module: "internal/image" is that package alone, and
// "internal/image/..." it and every package below it, as with go list.
func match(pattern, importPath string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		base = module + "/" + base
		return importPath == base || strings.HasPrefix(importPath, base+"/")
	}
	return importPath == module+"/"+pattern
}

func matchAny(patterns []string, importPath string) bool {
	for _, p := range patterns {
		if match(p, importPath) {
			return true
		}
	}
	return false
}

// rel is importPath relative to the module, for messages.
func rel(importPath string) string { return strings.TrimPrefix(importPath, module+"/") }

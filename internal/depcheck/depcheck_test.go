// Package depcheck holds the test that keeps lodge's layers in order:
// cmd → api → daemon → the capability packages → the leaves. Each package
// may import only the lodge packages its row allows; a new package fails
// until it has a row, so where it sits is a decision, not an accident.
package depcheck

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/lodge-containers/lodge/"

// leaves import no lodge package but each other's leaves listed here.
var leaves = []string{"errdefs", "version", "proc", "internal/atomicfile", "internal/testgate", "internal/layerdiff"}

// allowed maps a package (path in the module) to the lodge packages it may
// import besides the leaves. "*" allows everything (wiring and tests).
var allowed = map[string][]string{
	"paths":     {},
	"rootdir":   {},
	"cgroupv2":  {},
	"userns":    {"paths"},
	"storage":   {"paths"},
	"netns":     {"paths"},
	"image":     {},
	"runtime":   {"cgroupv2", "paths"},
	"build":     {},
	"buildkitd": {},
	// daemon: the object model over the capability packages.
	"daemon": {"build", "cgroupv2", "image", "netns", "rootdir", "runtime", "userns", "paths", "storage"},
	// api: HTTP over daemon's backends; it speaks moby's types, never the
	// capability packages' (build's options and errors are its request).
	// Debt, issue 19: image's progress encoder, auth decoding and option
	// types still cross into api; remove "image" here when they move.
	"api": {"daemon", "build", "paths", "image"},

	"cmd/lodge":           {"*"},
	"cmd/lodged":          {"*"},
	"cmd/lodge-monitor":   {"runtime"},
	"cmd/lodge-usernet":   {"netns"},
	"cmd/lodge-keeper":    {"netns", "paths", "userns"},
	"cmd/lodge-init":      {},
	"cmd/lodge-buildkitd": {"buildkitd"},
	"hack/bench":          {"*"},
	"hack/fixture":        {},
	"hack/mkimage":        {"hack/fixture"},
	"internal/nstest":     {},
	"internal/depcheck":   {},
	"tests":               {"*"},
}

func TestImportDirection(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	imports := map[string]map[string]bool{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		if imports[rel] == nil {
			imports[rel] = map[string]bool{}
		}
		for _, i := range f.Imports {
			path, _ := strconv.Unquote(i.Path.Value)
			if strings.HasPrefix(path, module) {
				imports[rel][strings.TrimPrefix(path, module)] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports) < 10 {
		t.Fatalf("found only %d packages under %s", len(imports), root)
	}
	for pkg, deps := range imports {
		ok, known := allowed[pkg]
		if slices.Contains(leaves, pkg) {
			ok, known = nil, true
		}
		if !known {
			t.Errorf("package %s has no row in depcheck's table: decide which layer it is in", pkg)
			continue
		}
		if slices.Contains(ok, "*") {
			continue
		}
		for d := range deps {
			if slices.Contains(leaves, d) && !slices.Contains(leaves, pkg) {
				continue
			}
			if !slices.Contains(ok, d) {
				t.Errorf("%s imports %s, which its layer may not", pkg, d)
			}
		}
	}
}

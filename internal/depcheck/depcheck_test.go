// Package depcheck holds the test that keeps lodge's layers in order:
// cmd → api → daemon → the capability packages → the leaves. Each package
// may import only the lodge packages its row allows, and a row may allow
// only packages in a layer below its own; a new package fails until it
// has a row, so where it sits is a decision, not an accident.
package depcheck

import (
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/lodge-containers/lodge/"

// leaves import no lodge package; every package may import them.
var leaves = []string{"errdefs", "version", "proc", "internal/atomicfile", "internal/testgate", "internal/layerdiff"}

// layers lists lodge's packages top down. A package's imports must sit in
// a later layer than its own (the leaves are the last); a package not
// listed is in its parent directory's layer (daemon/x is daemon's), and
// imports inside one tree (daemon → daemon/x) are left to the rows.
var layers = [][]string{
	// wiring, tools and tests: they may import anything below.
	{"cmd/lodge", "cmd/lodged", "cmd/lodge-monitor", "cmd/lodge-keeper", "cmd/lodge-usernet", "cmd/lodge-init", "cmd/lodge-buildkitd", "hack/bench", "hack/mkimage", "tests"},
	{"api", "cri"},
	{"daemon"},
	// capability packages: each does one thing for the daemon.
	{"build", "buildkitd", "image", "runtime", "netns", "userns", "storage"},
	// the process beside a running container, below runtime, which starts it.
	{"shim"},
	// what the capability packages share; daemon/stream is what the
	// daemon's services share (a client's stream, the detach keys).
	{"cgroupv2", "rootdir", "paths", "internal/platform", "daemon/stream", "hack/fixture", "internal/nstest", "internal/depcheck", "internal/buildbin"},
	// a cgroup directory's files, shared by cgroupv2 and the shim.
	{"internal/cgroupfs"},
	leaves,
}

// allowed maps a package (path in the module) to the lodge packages it may
// import besides the leaves. "*" allows everything below (wiring and tests).
var allowed = map[string][]string{
	"paths":     {},
	"rootdir":   {},
	"cgroupv2":  {"internal/cgroupfs"},
	"userns":    {"paths"},
	"storage":   {"paths"},
	"netns":     {"paths"},
	"image":     {"internal/platform"},
	"shim":      {"internal/cgroupfs"},
	"runtime":   {"cgroupv2", "paths", "shim"},
	"build":     {},
	"buildkitd": {},
	// platform: Docker's platform strings, for api, daemon and image alike.
	"internal/platform": {},
	// daemon: the engine, composing its services (daemon/*) and the
	// capability packages. The services import only what is below them,
	// never each other nor the engine.
	"daemon":         {"daemon/network", "daemon/volume", "daemon/exec", "daemon/files", "daemon/health", "daemon/logs", "daemon/stats", "daemon/stream", "build", "cgroupv2", "image", "netns", "rootdir", "runtime", "shim", "userns", "paths", "storage", "internal/platform"},
	"daemon/volume":  {},
	"daemon/network": {"netns"},
	// exec: the exec table; it runs processes through the runtime.
	"daemon/exec": {"daemon/stream", "runtime", "shim"},
	// files: docker cp and export, inside a container's root.
	"daemon/files": {"rootdir"},
	// health: healthcheck probes; it runs them through an exec table
	// it is handed, never imports one.
	"daemon/health": {"daemon/stream"},
	// logs: reads the logs the monitors write.
	"daemon/logs": {"runtime", "shim"},
	// stats: docker stats and top, from cgroups and /proc.
	"daemon/stats": {"cgroupv2"},
	// stream: the client side of attach and exec, shared; no state.
	"daemon/stream": {},
	// api: HTTP over daemon's backends; it speaks moby's types and plain
	// values, never the image service's or the runtime's. build is the
	// exception: a classic build's request is build.Options and a failed
	// RUN is build's ExitError, which api answers with Docker's status.
	// paths: the peer credential check on the socket.
	"api": {"daemon", "daemon/volume", "daemon/exec", "build", "paths", "internal/platform"},
	// cri: the Kubernetes CRI (gRPC) over daemon's services, beside api;
	// never the runtime, the monitor, namespaces or the store directly.
	// image: its ProgressSink, which a pull reports to.
	"cri": {"daemon", "daemon/exec", "daemon/stream", "image", "paths"},

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
	"internal/buildbin":   {},
	"internal/cgroupfs":   {},
	"tests":               {"*"},
}

// layerOf is the index in layers of pkg's layer, or -1.
func layerOf(pkg string) int {
	for p := pkg; p != "."; p = filepath.Dir(p) {
		for i, l := range layers {
			if slices.Contains(l, p) {
				return i
			}
		}
	}
	return -1
}

// sameTree tells whether a and b are one package tree (daemon, daemon/x).
func sameTree(a, b string) bool {
	return strings.HasPrefix(a+"/", b+"/") || strings.HasPrefix(b+"/", a+"/")
}

// below reports why pkg may not depend on dep by layer, or "".
func below(pkg, dep string) string {
	lp, ld := layerOf(pkg), layerOf(dep)
	switch {
	case lp < 0:
		return fmt.Sprintf("package %s is in no layer: add it to depcheck's layers", pkg)
	case ld < 0:
		return fmt.Sprintf("package %s is in no layer: add it to depcheck's layers", dep)
	case ld <= lp && !sameTree(pkg, dep):
		return fmt.Sprintf("%s may not depend on %s: it is not in a layer below", pkg, dep)
	}
	return ""
}

// check returns every broken rule in imports (package → lodge packages it
// imports), sorted.
func check(imports map[string]map[string]bool) []string {
	var errs []string
	for pkg, deps := range imports {
		ok, known := allowed[pkg]
		if slices.Contains(leaves, pkg) {
			ok, known = nil, true
		}
		if !known {
			errs = append(errs, fmt.Sprintf("package %s has no row in depcheck's table: decide which layer it is in", pkg))
			continue
		}
		for d := range deps {
			if slices.Contains(leaves, d) && !slices.Contains(leaves, pkg) {
				continue
			}
			if !slices.Contains(ok, "*") && !slices.Contains(ok, d) {
				errs = append(errs, fmt.Sprintf("%s imports %s, which its layer may not", pkg, d))
			} else if e := below(pkg, d); e != "" {
				errs = append(errs, e)
			}
		}
	}
	sort.Strings(errs)
	return errs
}

// The table itself keeps to the layers: no row allows a package at its
// own level or above, so the rows cannot be edited into a cycle.
func TestTableFollowsLayers(t *testing.T) {
	for pkg, deps := range allowed {
		if layerOf(pkg) < 0 {
			t.Errorf("package %s has a row but no layer", pkg)
		}
		for _, d := range deps {
			if d == "*" {
				continue
			}
			if e := below(pkg, d); e != "" {
				t.Errorf("row %s: %s", pkg, e)
			}
		}
	}
	for _, l := range leaves {
		if _, ok := allowed[l]; ok {
			t.Errorf("leaf %s has a row: leaves import only leaves", l)
		}
	}
}

// The check refuses what issue 19 took out: api importing the image
// service or the runtime, and a layer reaching up.
func TestCheckRefuses(t *testing.T) {
	for _, tc := range []struct {
		pkg, dep string
	}{
		{"api", "image"},
		{"api", "runtime"},
		{"api", "netns"},
		{"daemon", "api"},
		{"image", "daemon"},
		{"runtime", "image"},
		{"paths", "rootdir"},
		{"errdefs", "paths"},
		{"daemon/container", "api"},
		{"internal/new", "errdefs"},
	} {
		if errs := check(map[string]map[string]bool{tc.pkg: {tc.dep: true}}); len(errs) == 0 {
			t.Errorf("%s importing %s passes the check", tc.pkg, tc.dep)
		}
	}
	if errs := check(map[string]map[string]bool{"api": {"daemon": true, "errdefs": true, "internal/platform": true}}); len(errs) != 0 {
		t.Errorf("api's own imports refused: %v", errs)
	}
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
		rel, err := filepath.Rel(root, filepath.Dir(p))
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		if imports[rel] == nil {
			imports[rel] = map[string]bool{}
		}
		for _, i := range f.Imports {
			path, err := strconv.Unquote(i.Path.Value)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
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
	if len(imports["api"]) == 0 || len(imports["daemon"]) == 0 {
		t.Fatalf("api or daemon imports nothing of lodge's: the walk is broken (%v)", imports)
	}
	for _, e := range check(imports) {
		t.Error(e)
	}
}

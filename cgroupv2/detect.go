package cgroupv2

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Layout is how the machine mounts cgroups.
type Layout string

// Layouts.
const (
	Unified Layout = "unified" // v2 only, at the root
	Hybrid  Layout = "hybrid"  // v1 controllers, v2 at <root>/unified
	Legacy  Layout = "legacy"  // v1 only
)

// State is what lodged can do with cgroups from where it is.
type State struct {
	Layout Layout
	// V2Root is the mount point of the v2 hierarchy ("" when there is none).
	V2Root string
	// Own is lodged's cgroup path within the v2 hierarchy, e.g. "/user.slice/...".
	Own string
	// Base is the cgroup lodge makes its own under: Own, or Own's parent
	// when lodged already sits in its leaf (DaemonLeaf) there.
	Base string
	// Controllers lists the controllers available in Base (cgroup.controllers).
	Controllers []string
	// Writable is true when lodged may create child cgroups under Base.
	Writable bool
}

// Dir is Base as a directory of the mounted hierarchy ("" without one).
func (s State) Dir() string {
	if s.V2Root == "" || s.Base == "" {
		return ""
	}
	return filepath.Join(s.V2Root, s.Base)
}

// Delegated reports whether lodged may create cgroups and has at least one
// resource controller to limit them with.
func (s State) Delegated() bool { return s.Writable && len(s.Controllers) > 0 }

// Has reports whether a controller is available.
func (s State) Has(c string) bool {
	for _, x := range s.Controllers {
		if x == c {
			return true
		}
	}
	return false
}

// Version is the cgroup version containers get: "2" when there is a v2
// hierarchy lodged can write to, else "1".
func (s State) Version() string {
	if s.V2Root != "" && s.Writable {
		return "2"
	}
	if s.Layout == Unified {
		return "2"
	}
	return "1"
}

// Summary is one line for info and logs.
func (s State) Summary() string {
	switch {
	case s.V2Root == "":
		return "cgroup v1 only: no limits, no pause"
	case !s.Writable:
		return fmt.Sprintf("%s, v2 at %s, %s not writable: no limits, no pause", s.Layout, s.V2Root, s.Base)
	case len(s.Controllers) == 0:
		return fmt.Sprintf("%s, v2 subtree %s delegated with no resource controllers: pause and kill work, limits do not", s.Layout, s.Base)
	}
	return fmt.Sprintf("%s, v2 subtree %s delegated with controllers: %s", s.Layout, s.Base, strings.Join(s.Controllers, " "))
}

// Detect reads the layout under root (normally /sys/fs/cgroup) and the
// process's own cgroup from procSelfCgroup (normally /proc/self/cgroup).
func Detect(root, procSelfCgroup string) (State, error) {
	var s State
	switch {
	case isCgroup2(root):
		s.Layout, s.V2Root = Unified, root
	case isCgroup2(filepath.Join(root, "unified")):
		s.Layout, s.V2Root = Hybrid, filepath.Join(root, "unified")
	default:
		s.Layout = Legacy
		return s, nil
	}
	f, err := os.Open(procSelfCgroup)
	if err != nil {
		return s, err
	}
	defer f.Close()
	own, err := parseOwn(f)
	if err != nil {
		return s, err
	}
	s.Own, s.Base = own, own
	if path.Base(own) == DaemonLeaf {
		s.Base = path.Dir(own)
	}
	dir := s.Dir()
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers")); err == nil {
		s.Controllers = strings.Fields(string(b))
	}
	s.Writable = writable(dir)
	return s, nil
}

// writable reports whether dir is delegated to this process: the directory
// (for children) and its cgroup.procs (to move processes under it).
func writable(dir string) bool {
	return unix.Access(dir, unix.W_OK) == nil && unix.Access(filepath.Join(dir, "cgroup.procs"), unix.W_OK) == nil
}

// parseOwn finds the v2 line ("0::/path") of /proc/self/cgroup.
func parseOwn(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return p, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("no cgroup v2 entry in /proc/self/cgroup")
}

// isCgroup2 is true for a cgroup2 mount. Overridden in tests, which use
// plain directories with a marker file.
var isCgroup2 = func(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC
}

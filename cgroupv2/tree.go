package cgroupv2

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/internal/cgroupfs"
)

// The cgroups lodge makes under its base (State.Base):
//
//	<base>/lodged             the daemon's processes (a leaf)
//	<base>/monitors           every container's monitor (a leaf)
//	<base>/containers/<id>    one per running container (a leaf)
//
// The base itself holds no process, so it may hand controllers to its
// children (cgroup v2's no-internal-process rule).
const (
	DaemonLeaf    = "lodged"
	monitorsLeaf  = "monitors"
	containersDir = "containers"
)

// EnterLeaf moves the processes of the caller's cgroup into its DaemonLeaf
// child, making the leaf when needed, so that the cgroup becomes lodge's
// base. It does nothing when the caller's cgroup is not delegated to it or
// the caller already sits in its leaf. Processes that cannot be moved (they
// vanished, or belong to someone else) are skipped.
func EnterLeaf(root, procSelfCgroup string) error {
	s, err := Detect(root, procSelfCgroup)
	if err != nil || s.V2Root == "" || !s.Writable || s.Own != s.Base {
		return err
	}
	leaf := filepath.Join(s.Dir(), DaemonLeaf)
	if err := mkdir(leaf); err != nil {
		return err
	}
	pids, err := Procs(s.Dir())
	if err != nil {
		return err
	}
	self := os.Getpid()
	if err := Join(leaf, self); err != nil {
		return err
	}
	for _, pid := range pids {
		if pid != self && pid != 0 {
			// One that exits meanwhile cannot move; one that stays and
			// cannot shows when controllers are enabled (EBUSY).
			_ = Join(leaf, pid)
		}
	}
	return nil
}

func mkdir(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

// Join moves process pid (all its threads) into the cgroup at dir.
func Join(dir string, pid int) error {
	return writeFile(dir, "cgroup.procs", strconv.Itoa(pid))
}

// Procs lists the processes in the cgroup at dir, as pids of the caller's
// pid namespace (0 for those outside it).
func Procs(dir string) ([]int, error) { return cgroupfs.Procs(dir) }

// Kill kills every process in the cgroup at dir and its descendants, at
// once (cgroup.kill), so none can fork its way out; on kernels without
// cgroup.kill, one by one until none is left.
func Kill(ctx context.Context, dir string) error { return cgroupfs.Kill(ctx, dir) }

// Freeze freezes (or thaws) the cgroup at dir and waits until the kernel
// says it is done (cgroup.events frozen), or ctx ends. A machine without
// the v2 freezer is errdefs.ErrNotImplemented.
func Freeze(ctx context.Context, dir string, frozen bool) error {
	return cgroupfs.Freeze(ctx, dir, frozen)
}

// Frozen reports whether the cgroup at dir is frozen.
func Frozen(dir string) (bool, error) { return cgroupfs.Frozen(dir) }

// Remove removes the cgroup at dir once its processes are gone, waiting
// for them up to ctx's end. A cgroup that is already gone is no error.
func Remove(ctx context.Context, dir string) error { return cgroupfs.Remove(ctx, dir) }

// The interface-file helpers live in cgroupfs, which the shim shares.
var (
	writeFile = cgroupfs.WriteFile
	readKeyed = cgroupfs.ReadKeyed
	dirExists = cgroupfs.Exists
)

// Tree is lodge's cgroups under a delegated base. Its methods are safe for
// concurrent use; each container's cgroup is its own caller's business.
type Tree struct {
	dir         string
	controllers []string
}

// NewTree returns the tree for a detected state, or an error saying why
// lodge cannot make cgroups there.
func NewTree(s State) (*Tree, error) {
	if s.V2Root == "" || !s.Writable {
		return nil, errdefs.Unavailablef("no delegated cgroup v2: %s", s.Summary())
	}
	return &Tree{dir: s.Dir(), controllers: s.Controllers}, nil
}

// Has reports whether a controller is delegated to the tree.
func (t *Tree) Has(c string) bool {
	for _, x := range t.controllers {
		if x == c {
			return true
		}
	}
	return false
}

// Controllers lists the delegated controllers.
func (t *Tree) Controllers() []string { return t.controllers }

// MonitorsDir is the leaf every monitor waits in.
func (t *Tree) MonitorsDir() string { return filepath.Join(t.dir, monitorsLeaf) }

// ContainerDir is container id's cgroup (whether or not it exists).
func (t *Tree) ContainerDir(id string) string { return filepath.Join(t.dir, containersDir, id) }

// Create makes container id's cgroup with limits l (replacing one left
// from an earlier run), enabling the controllers l needs on the way down.
// It returns the cgroup's directory.
func (t *Tree) Create(id string, l Limits) (string, error) {
	need := l.Controllers()
	for _, c := range need {
		if !t.Has(c) {
			return "", MissingController(c)
		}
	}
	if err := mkdir(t.MonitorsDir()); err != nil {
		return "", err
	}
	parent := filepath.Join(t.dir, containersDir)
	if err := mkdir(parent); err != nil {
		return "", err
	}
	if err := enable(t.dir, need); err != nil {
		return "", err
	}
	if err := enable(parent, need); err != nil {
		return "", err
	}
	dir := t.ContainerDir(id)
	if dirExists(dir) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		// Best effort: a leftover that stays is reused, its limits
		// rewritten by Apply below (the tests' fake cgroupfs keeps its
		// files, so it can never be removed there).
		_ = Kill(ctx, dir)
		_ = Remove(ctx, dir)
		cancel()
	}
	if err := mkdir(dir); err != nil {
		return "", err
	}
	if err := Apply(dir, l); err != nil {
		_ = os.Remove(dir) // Apply's error is the one to report; an empty leftover goes on the next create
		return "", err
	}
	return dir, nil
}

// Update changes a container's limits in place.
func (t *Tree) Update(id string, l Limits) error {
	for _, c := range l.Controllers() {
		if !t.Has(c) {
			return MissingController(c)
		}
	}
	dir := t.ContainerDir(id)
	if err := enable(t.dir, l.Controllers()); err != nil {
		return err
	}
	if err := enable(filepath.Dir(dir), l.Controllers()); err != nil {
		return err
	}
	return Apply(dir, l)
}

// enable turns controllers on for dir's children, those not on already.
func enable(dir string, controllers []string) error {
	if len(controllers) == 0 {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	on := strings.Fields(string(b))
	var add []string
	for _, c := range controllers {
		found := false
		for _, o := range on {
			found = found || o == c
		}
		if !found {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	return writeFile(dir, "cgroup.subtree_control", strings.Join(add, " "))
}

// MissingController is the error for a limit whose controller is not
// delegated to lodged: what is missing and how to get it.
func MissingController(c string) error {
	return errdefs.Unavailablef("the %s cgroup controller is not delegated to lodged, so this limit cannot be enforced. "+
		"Ask for cgroup v2 delegation of the controllers (systemd: a drop-in /etc/systemd/system/user@.service.d/delegate.conf with "+
		"[Service] Delegate=cpu cpuset io memory pids, then log in again), or start lodged with --cgroup-limits=warn to run without the limit", c)
}

package daemon

import (
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/lodge-containers/lodge/daemon/exec"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/runtime"
)

// execHost is what the exec table (daemon/exec) sees of the containers:
// it reads a record under the container's lock and hands back values.
type execHost struct{ s *Containers }

var _ exec.Containers = execHost{}

// Admit checks that container ref runs, and that req can run in it.
func (h execHost) Admit(ref string, req container.ExecCreateRequest) (string, error) {
	c, err := h.s.recs.get(ref)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	running := c.State.Status == container.StateRunning
	paused := c.State.Status == container.StatePaused
	c.mu.Unlock()
	if paused {
		return "", errdefs.Conflictf("Container %s is paused, unpause the container before exec", c.ID)
	}
	if !running {
		return "", errdefs.Conflictf("container %s is not running", c.ID)
	}
	if len(req.Cmd) == 0 {
		return "", errdefs.InvalidArgumentf("No exec command specified")
	}
	if err := validateEnv(req.Env); err != nil {
		return "", err
	}
	return c.ID, nil
}

// Process settles an exec's environment, directory, user and runtime from
// its container's record and root.
func (h execHost) Process(id string, req container.ExecCreateRequest) (runtime.ExecSpec, error) {
	c, err := h.s.recs.get(id)
	if err != nil {
		return runtime.ExecSpec{}, err
	}
	c.mu.Lock()
	pid := c.State.Pid
	env := mergeEnv(c.Config.Env, req.Env)
	cwd := req.WorkingDir
	if cwd == "" {
		cwd = c.Config.WorkingDir
	}
	user := req.User
	if user == "" {
		maps, err := idMapsFor(c.HostConfig.UsernsMode)
		if err != nil {
			c.mu.Unlock()
			return runtime.ExecSpec{}, err
		}
		user = containerUser(c, maps)
	}
	rt := h.s.spec.runtimeBinary(c)
	groupAdd := append([]string(nil), c.HostConfig.GroupAdd...)
	c.mu.Unlock()
	if cwd == "" {
		cwd = "/"
	}
	spec := runtime.ExecSpec{Env: env, Cwd: cwd, Runtime: rt}
	root := fmt.Sprintf("/proc/%d/root", pid)
	uid, gid, groups, err := resolveUser(root, user)
	if err != nil {
		return runtime.ExecSpec{}, err
	}
	// The container's --group-add groups are its execs' too, as Docker's
	// exec gives them.
	for _, g := range groupAdd {
		n, err := resolveGroup(root, g)
		if err != nil {
			return runtime.ExecSpec{}, err
		}
		groups = append(groups, n)
	}
	spec.UID, spec.GID, spec.AdditionalGids = uid, gid, groups
	return spec, nil
}

// Joined moves an exec's process into its container's cgroup.
func (h execHost) Joined(id string, pid int) { h.s.cg.join(id, pid) }

// Emit publishes an exec's event as its container's.
func (h execHost) Emit(id string, a events.Action, attrs ...string) {
	c, err := h.s.recs.get(id)
	if err != nil {
		return
	}
	h.s.Events.forContainer(c, a, attrs...)
}

// ExecAPI is the exec table of s, for the API's exec routes.
func ExecAPI(s *Containers) *exec.Service { return s.execs }

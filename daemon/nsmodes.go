package daemon

import (
	"fmt"
	"os"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/runtime"
)

// validateNamespaceModes checks --pid, --ipc and --uts at create, in
// Docker's words. lodge honours every mode Docker knows: "host" is
// lodged's own namespace (the host's unless lodged runs in one of its own),
// "container:X" joins X's. For UTS that is Podman's mode (Docker's API
// knows only "host"), which the CRI's pods use. None is silently ignored.
func validateNamespaceModes(cfg *container.Config, hc *container.HostConfig) error {
	pid, ipc, uts := string(hc.PidMode), string(hc.IpcMode), string(hc.UTSMode)
	if pid != "" && pid != "host" && !isContainerMode(pid) {
		return errdefs.InvalidArgumentf("invalid PID mode: %v", pid)
	}
	switch {
	case ipc == "", ipc == "private", ipc == "shareable", ipc == "host", ipc == "none", isContainerMode(ipc):
	default:
		return errdefs.InvalidArgumentf("invalid IPC mode: %v", ipc)
	}
	if uts != "" && uts != "host" && !isContainerMode(uts) {
		return errdefs.InvalidArgumentf("invalid UTS mode: %v", uts)
	}
	if uts == "host" && cfg.Hostname != "" {
		return errdefs.InvalidArgumentf("conflicting options: hostname and the UTS mode")
	}
	if isContainerMode(uts) && (cfg.Hostname != "" || cfg.Domainname != "") {
		return errdefs.InvalidArgumentf("conflicting options: hostname and the UTS mode %s: the container takes the hostname of the one whose UTS namespace it joins", uts)
	}
	if !hc.CgroupnsMode.Valid() {
		return errdefs.InvalidArgumentf("invalid cgroup namespace mode: %v", hc.CgroupnsMode)
	}
	if hc.UsernsMode == usernsKeepID && (pid != "" || uts != "" || ipc == "host" || isContainerMode(ipc)) {
		return errdefs.InvalidArgumentf("--userns=keep-id gives the container a user namespace of its own: it cannot share the pid, ipc or uts namespace of lodged or another container")
	}
	return nil
}

func isContainerMode(m string) bool {
	return strings.HasPrefix(m, "container:") && len(m) > len("container:")
}

// shares resolves a starting container's namespace modes: another
// container's namespaces are found through its init's pid, so it must be
// running. Callers hold c.mu.
func (m *specMaker) shares(c *Container) (runtime.Shares, error) {
	var sh runtime.Shares
	hc := c.HostConfig
	join := func(mode, kind, ns string) (runtime.Share, error) {
		switch {
		case mode == "host":
			return runtime.Share{Host: true}, nil
		case isContainerMode(mode):
			other, err := m.recs.get(strings.TrimPrefix(mode, "container:"))
			if err != nil {
				return runtime.Share{}, err
			}
			if other.ID == c.ID {
				return runtime.Share{}, errdefs.InvalidArgumentf("cannot join own %s namespace", kind)
			}
			if other.State.Pid == 0 {
				return runtime.Share{}, errdefs.Conflictf("cannot join %s of a non running container: %s", kind, other.ID)
			}
			return runtime.Share{Path: fmt.Sprintf("/proc/%d/ns/%s", other.State.Pid, ns)}, nil
		}
		return runtime.Share{}, nil
	}
	var err error
	if sh.PID, err = join(string(hc.PidMode), "PID", "pid"); err != nil {
		return sh, err
	}
	if sh.IPC, err = join(string(hc.IpcMode), "IPC", "ipc"); err != nil {
		return sh, err
	}
	sh.NoShm = hc.IpcMode == "none"
	if sh.UTS, err = join(string(hc.UTSMode), "UTS", "uts"); err != nil {
		return sh, err
	}
	return sh, nil
}

// hostHostname is the name a container sharing lodged's UTS namespace
// sees, recorded in its config as Docker records the host's.
func hostHostname() string {
	h, _ := os.Hostname()
	return h
}

package runtime

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lodge-containers/lodge/cgroupv2"
)

// createInCgroup creates the container with the monitor standing in the
// container's cgroup, so the init it forks (and everything that descends
// from it) starts there: no process of the container ever runs outside
// it, whatever the runtime does with cgroup v1. The monitor then steps out
// to its own leaf.
func (m *monitor) createInCgroup(spec *specs.Spec, pio procIO) (int, *os.File, error) {
	if m.cfg.Cgroup == "" {
		return m.rt.create(spec, pio)
	}
	if err := cgroupv2.Join(m.cfg.Cgroup, os.Getpid()); err != nil {
		return 0, nil, fmt.Errorf("entering the container's cgroup: %w", err)
	}
	pid, console, err := m.rt.create(spec, pio)
	if lerr := cgroupv2.Join(m.cfg.MonitorCgroup, os.Getpid()); lerr != nil && err == nil {
		return 0, nil, errors.Join(fmt.Errorf("leaving the container's cgroup: %w", lerr),
			killGone(m.rt.signal(syscall.SIGKILL)), m.rt.destroy())
	}
	return pid, console, err
}

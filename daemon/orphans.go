package daemon

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/lodge-containers/lodge/cgroupv2"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/runtime"
)

// A container whose monitor died (kill -9, OOM killer) runs on: its
// processes do not depend on the monitor. Its state comes from its init
// process (pid and start time, recorded at start) and its cgroup, not from
// the monitor alone: it is still shown running, exec works (the runtime's
// state is the monitor's only by name), and stop, kill and rm reach it
// through its init and its cgroup. What is lost with the monitor: its
// output from then on (the monitor held the read end of its stdout and
// stderr, and a tty's master), attach, resize, and its exit code (the
// init's parent was the monitor; whoever reaps it now throws the status
// away). lodge does not start a new monitor for it: none could recover
// those.

// errMonitorGone is what attach and resize answer for such a container.
func errMonitorGone(id string) error {
	return errdefs.Unavailablef("container %s runs on without its monitor, which died: its output is no longer collected, "+
		"so attach and resize are not possible (logs keep what came before; exec, stop, kill and rm work)", id)
}

// signal sends sig to a running container's init: through its monitor,
// or, once the monitor is gone, to the init itself (checked by its start
// time, so a recycled pid is never signalled).
func (s *Containers) signal(c *Container, ctl *runtime.Ctl, sig syscall.Signal) error {
	err := ctl.Signal(sig)
	if err == nil || !errors.Is(err, runtime.ErrMonitorGone) {
		return err
	}
	c.mu.Lock()
	ip := c.initProc()
	c.monitorGone = true
	c.lastSignal = sig
	c.mu.Unlock()
	if err := ip.Signal(sig); err != nil {
		if errors.Is(err, runtime.ErrInitGone) {
			return errdefs.Conflictf("container %s is not running", c.ID)
		}
		return fmt.Errorf("signalling the container's init (its monitor is gone): %w", err)
	}
	return nil
}

// outliveMonitor follows a container whose monitor is gone without having
// recorded an exit: it waits for the init to end, does what the monitor
// would have done then (kills what is left in the cgroup, removes it and
// the runtime's state), and says how the container ended, as far as
// anyone can tell.
func (s *Containers) outliveMonitor(c *Container) runtime.ExitStatus {
	c.mu.Lock()
	ip := c.initProc()
	c.monitorGone = true
	c.mu.Unlock()
	if ip.Alive() {
		s.Log.Warn("the container's monitor died; the container runs on without it (no more logs, no exit code)", "id", c.ID, "pid", ip.Pid)
		if err := ip.Wait(context.Background()); err != nil {
			s.Log.Warn("waiting for the container's init", "id", c.ID, "err", err)
		}
	}
	st := runtime.ExitStatus{FinishedAt: time.Now().UTC()}
	s.endCgroup(c.ID, &st)
	runtime.Forget(s.stateRoot, c.ID, s.runtimeBinary(c))
	c.mu.Lock()
	sig := c.lastSignal
	c.mu.Unlock()
	if sig != 0 {
		// It died after lodge signalled it: most likely of that signal,
		// as Docker would report it.
		st.ExitCode = 128 + int(sig)
	} else {
		st.ExitCode = 255
		st.Error = "the container's monitor died before the container ended: its exit status is unknown"
	}
	return st
}

// endCgroup notes an OOM kill in an ended container's cgroup, kills what
// is left there and removes it, as a monitor does when its container ends.
func (s *Containers) endCgroup(id string, st *runtime.ExitStatus) {
	if s.Cgroups == nil {
		return
	}
	dir := s.Cgroups.ContainerDir(id)
	if cgroupv2.OOMKills(dir) > 0 {
		st.OOMKilled = true
	}
	s.dropCgroup(id)
}

package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/lodge-containers/lodge/cgroupv2"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/runtime"
	"github.com/lodge-containers/lodge/shim"
)

// A container whose monitor died (kill -9, the OOM killer) runs on: its
// processes do not depend on the monitor. Its state comes from its init
// process (pid and start time, recorded at start) and its cgroup, not
// from the monitor alone: it is still shown running, and exec works (the
// runtime's state is the monitor's only by name).
//
// lodged starts another monitor for it, which adopts it (adopt): lodged
// has held copies of the container's output pipes (or tty master) since
// its start, so what is in the pipes waits for it (only what the dead
// monitor had read and not yet logged is lost), and the new one logs and serves
// attach, resize, signals and waits as the first did. What went with the
// first monitor: the container's stdin (a tty's comes back), and its exit
// code (the monitor was the init's parent; whoever reaps it now throws
// the status away): the exit is recorded as 128+the signal lodge last
// sent, or 255 with the reason.
//
// When the monitor died while no lodged ran, none held the copies: the
// new monitor gets new read ends of the pipes, opened through the init's
// /proc/PID/fd (what was written while the pipes had no reader is lost).
// A tty's master cannot be had that way: such a container runs on
// without a monitor (outliveMonitor), lodged reaches it through its init
// and cgroup for stop, kill and rm, refuses attach saying why, and its
// output is no longer logged.

// errMonitorGone is what attach and resize answer for such a container.
func errMonitorGone(id string) error {
	return errdefs.Unavailablef("container %s runs on without its monitor, which died: its output is no longer collected, "+
		"so attach and resize are not possible (logs keep what came before; exec, stop, kill and rm work)", id)
}

// signal sends sig to a running container's init: through its monitor,
// or, once the monitor is gone, to the init itself (checked by its start
// time, so a recycled pid is never signalled).
func (x *CgroupControl) signal(c *Container, ctl *runtime.Ctl, sig syscall.Signal) error {
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
		if errors.Is(err, shim.ErrInitGone) {
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
//
// ok is false when the daemon's lifetime ended first: then nothing is
// recorded, and the next daemon finds the container as this one did.
func (l *Lifecycle) outliveMonitor(c *Container) (st shim.ExitStatus, ok bool) {
	c.mu.Lock()
	ip := c.initProc()
	c.monitorGone = true
	c.mu.Unlock()
	if ip.Alive() {
		l.log.Warn("the container's monitor died; the container runs on without it (no more logs, no exit code)", "id", c.ID, "pid", ip.Pid)
		if err := ip.Wait(l.life); err != nil {
			if l.life.Err() != nil {
				return st, false
			}
			l.log.Warn("waiting for the container's init", "id", c.ID, "err", err)
		}
	}
	st = shim.ExitStatus{FinishedAt: time.Now().UTC()}
	l.control.endCgroup(c.ID, &st)
	if err := runtime.Forget(l.stateRoot, c.ID, l.spec.runtimeBinary(c)); err != nil {
		// Its next start removes what is left, or fails saying why.
		l.log.Warn("removing the runtime's state of a container whose monitor died", "id", c.ID, "err", err)
	}
	c.mu.Lock()
	sig := c.lastSignal
	c.mu.Unlock()
	if sig != 0 {
		// It died after lodge signalled it: most likely of that signal,
		// as Docker would report it.
		st.ExitCode = 128 + int(sig)
	} else {
		st.ExitCode = 255
		st.Error = shim.ExitUnknownReason
	}
	return st, true
}

// maxAdoptions bounds the monitors started for one run of a container,
// lest one that cannot live be started forever.
const maxAdoptions = 10

// holdOutputs takes copies of a running container's output from its
// monitor, for a monitor that adopts the container if that one dies.
// Callers hold c.mu.
func (l *Lifecycle) holdOutputs(c *Container) {
	c.dropOutputs()
	files, streams, err := shim.OutputFiles(l.recs.sockDir(c.ID))
	if err != nil {
		// A container that ended at once takes its monitor along: nothing
		// to hold then.
		level := slog.LevelWarn
		if errors.Is(err, runtime.ErrMonitorGone) {
			level = slog.LevelDebug
		}
		l.log.Log(context.Background(), level, "no copy of the container's output: a monitor that dies cannot be replaced", "id", c.ID, "err", err)
		return
	}
	c.outputs, c.streams = files, streams
}

// dropOutputs closes the copies. Callers hold c.mu.
func (c *Container) dropOutputs() {
	for _, f := range c.outputs {
		f.Close()
	}
	c.outputs, c.streams = nil, nil
}

// adopt starts a monitor for a running container whose monitor died,
// handing it the container's output; false when there is nothing to adopt
// (the init has ended) or nothing to adopt it with (lodged started after
// the container and its monitor died while no lodged ran).
func (l *Lifecycle) adopt(c *Container) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ip := c.initProc()
	if c.adoptions >= maxAdoptions || !ip.Alive() {
		return false
	}
	if c.outputs == nil && !c.Config.Tty {
		// Nobody held copies (lodged started after the monitor died):
		// new read ends, through the init.
		files, streams, err := runtime.ReopenOutputs(ip)
		if err != nil {
			l.log.Warn("cannot reopen the output of a container whose monitor died", "id", c.ID, "err", err)
			return false
		}
		c.outputs, c.streams = files, streams
	}
	if c.outputs == nil {
		return false
	}
	c.adoptions++
	var mcfg shim.MonitorConfig
	b, err := os.ReadFile(filepath.Join(l.recs.dir(c.ID), "monitor.json"))
	if err == nil {
		err = json.Unmarshal(b, &mcfg)
	}
	if err != nil {
		l.log.Warn("cannot replace the container's monitor", "id", c.ID, "err", err)
		return false
	}
	mcfg.Adopt, mcfg.AdoptStreams = &ip, c.streams
	cfgPath := filepath.Join(l.recs.dir(c.ID), "monitor-adopt.json")
	if err := writeJSON(cfgPath, mcfg); err != nil {
		l.log.Warn("cannot replace the container's monitor", "id", c.ID, "err", err)
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := runtime.AdoptMonitor(ctx, cfgPath, filepath.Join(l.recs.sockDir(c.ID), "monitor.log"), c.outputs); err != nil {
		l.log.Warn("cannot replace the container's monitor", "id", c.ID, "err", err)
		return false
	}
	l.log.Warn("the container's monitor died; another one took over (its output is logged again, its exit code will not be known)", "id", c.ID, "pid", ip.Pid)
	c.monitorGone = false
	l.tellMonitorStarted()
	return true
}

// endCgroup notes an OOM kill in an ended container's cgroup, kills what
// is left there and removes it, as a monitor does when its container ends.
func (x *CgroupControl) endCgroup(id string, st *shim.ExitStatus) {
	if x.cg.tree == nil {
		return
	}
	dir := x.cg.tree.ContainerDir(id)
	if cgroupv2.OOMKills(dir) > 0 {
		st.OOMKilled = true
	}
	x.cg.drop(id)
}

package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/lodge-containers/lodge/daemon/exec"
	"github.com/lodge-containers/lodge/daemon/health"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/runtime"
	"github.com/lodge-containers/lodge/shim"
)

// A container's life after create: start, the watch on its exit, stop,
// kill, restart and the waits on it.

// Lifecycle starts, stops, kills, restarts and waits for containers, and
// watches each running one until it exits: it records the exit, applies
// the restart policy, and replaces a monitor that died. It holds the
// parts a start and an exit use; removal (of a --rm container) is the
// engine's, reached through remove.
type Lifecycle struct {
	recs      *store
	net       *netGlue
	spec      *specMaker
	cg        cgroupCtl
	control   *CgroupControl
	execs     *exec.Service
	health    *health.Prober
	rootfs    RootfsStore
	ev        *Events
	log       *slog.Logger
	stateRoot string
	// life ends when the daemon shuts down: the exit watchers end with it.
	life context.Context
	// remove is the engine's Remove: a --rm container goes at its exit,
	// or when its start failed.
	remove func(ctx context.Context, ref string, opts RemoveOptions) error
	// containersChanged is ContainersConfig.ContainersChanged; telling
	// is set while it runs for a start, ending while it waits to run for
	// an end: starts and ends meanwhile do not call it again (the monitor
	// that made it run is there for it to see, or the last end is still
	// to come).
	containersChanged func(ended bool)
	telling, ending   atomic.Bool
}

// tellMonitorStarted runs containersChanged in the background, unless it
// runs already for a start.
func (l *Lifecycle) tellMonitorStarted() {
	if l.containersChanged == nil || !l.telling.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer l.telling.Store(false)
		l.containersChanged(false)
	}()
}

// tellContainerEnded runs containersChanged a second after a container
// ended, once its monitor (which lingers 100 ms for late waiters) is gone
// too, unless such a call waits already. A daemon that ends meanwhile
// says nothing: its keeper looks at its end.
func (l *Lifecycle) tellContainerEnded() {
	if l.containersChanged == nil || !l.ending.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(time.Second, func() {
		l.ending.Store(false)
		if l.life.Err() == nil {
			l.containersChanged(true)
		}
	})
}

// Start runs a created or stopped container.
func (l *Lifecycle) Start(ctx context.Context, ref string) error {
	c, err := l.recs.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running() {
		return errNotModified
	}
	if c.State.Status == container.StateRemoving || c.State.Status == container.StateDead {
		return errdefs.Conflictf("container %s is marked for removal and cannot be started", c.ID)
	}
	c.ManualStop = false
	err = l.startLocked(ctx, c)
	if err != nil && c.HostConfig.AutoRemove {
		// --rm: a container that could not start goes too; the client
		// waits for its removal.
		go func() {
			if err := l.remove(context.Background(), c.ID, RemoveOptions{Force: true, Volumes: true}); err != nil {
				l.log.Warn("auto-remove after a failed start", "id", c.ID, "err", err)
			}
		}()
	}
	return err
}

// errNotModified tells the API to answer 304, as Docker does for starting a
// running container.
var errNotModified = errors.New("container already started")

// IsNotModified reports whether err means "nothing to do".
func IsNotModified(err error) bool { return errors.Is(err, errNotModified) }

func (l *Lifecycle) startLocked(ctx context.Context, c *Container) (err error) {
	rootfs, err := l.rootfs.Mount(c.ID)
	if err != nil {
		return fmt.Errorf("mounting the container's filesystem: %w", err)
	}
	defer func() {
		if err != nil {
			l.unmount(c.ID)
			l.cg.drop(c.ID)
		}
	}()
	if err := l.net.attach(ctx, c); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			l.net.detach(c)
		}
	}()
	dir := l.recs.dir(c.ID)
	spec, err := l.spec.build(c, rootfs)
	if err != nil {
		return err
	}
	if err := replaceJSON(filepath.Join(dir, "config.json"), spec); err != nil {
		return err
	}
	// The last run's exit must go: the watcher would read it as this one's.
	if err := os.Remove(filepath.Join(dir, "exit.json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	mcfg := &shim.MonitorConfig{
		ID: c.ID, StateRoot: l.stateRoot, Bundle: dir, Runtime: l.spec.runtimeBinary(c),
		LogPath: l.recs.logFileFor(c.ID, c.HostConfig.LogConfig), ExitPath: filepath.Join(dir, "exit.json"),
		SockDir: l.recs.sockDir(c.ID), Tty: c.Config.Tty, OpenStdin: c.Config.OpenStdin, StdinOnce: c.Config.StdinOnce,
	}
	// Checked at create; a record from before the check rotates nothing.
	mcfg.LogMaxSize, mcfg.LogMaxFiles, _ = rotationFor(c.HostConfig.LogConfig)
	mcfg.LogFormat = logFormat(c.HostConfig.LogConfig)
	if cs := c.HostConfig.ConsoleSize; cs[0] > 0 && cs[1] > 0 {
		mcfg.Height, mcfg.Width = uint16(cs[0]), uint16(cs[1])
	}
	if err := l.cg.create(c.ID, c.HostConfig.Resources, mcfg); err != nil {
		return err
	}
	if err := replaceJSON(filepath.Join(dir, "monitor.json"), mcfg); err != nil {
		return err
	}
	// The monitor's own log stays in the runtime dir (local, tmpfs
	// usually), not the container's dir: on NFS or FUSE a file still held
	// open turns into .nfs*/.fuse_hidden* and the container's directory
	// could not be removed until the monitor exits.
	if err := os.MkdirAll(l.recs.sockDir(c.ID), 0o700); err != nil {
		return err
	}
	pid, err := runtime.StartMonitor(ctx, filepath.Join(dir, "monitor.json"), filepath.Join(l.recs.sockDir(c.ID), "monitor.log"))
	if err != nil {
		c.State.Error = err.Error()
		c.State.ExitCode = exitCodeFor(err)
		l.recs.keep(c)
		return err
	}
	c.State = ContainerState{Status: container.StateRunning, Pid: pid, StartedAt: time.Now().UTC()}
	// The init waits for go, so it is there to be read.
	if c.State.PidStartTime, err = shim.StartTime(pid); err != nil {
		l.log.Warn("no start time for the container's init: it could not be reached without its monitor", "id", c.ID, "err", err)
	}
	c.monitorGone, c.lastSignal = false, 0
	c.HasBeenStartedBefore = true
	l.tellMonitorStarted()
	l.startHealth(c)
	for _, p := range c.pending {
		connectAttach(l.recs.sockDir(c.ID), l.ev, c, p)
	}
	c.pending = nil
	l.ev.forContainer(c, events.ActionStart)
	ctl := runtime.NewCtl(l.recs.sockDir(c.ID))
	if err := ctl.Go(); err != nil {
		l.log.Warn("container did not take go", "id", c.ID, "err", err)
	}
	ctl.Close()
	c.adoptions = 0
	l.holdOutputs(c)
	l.recs.keep(c)
	go l.watch(c)
	return nil
}

// exitCodeFor gives the exit code Docker reports for a start failure.
func exitCodeFor(err error) int {
	if code := runtime.FailureCode(err.Error()); code != 0 {
		return code
	}
	return 128
}

// watch waits for a running container to end and records it. It
// returns, recording nothing, when the service's lifetime ends: the next
// daemon watches the container.
func (l *Lifecycle) watch(c *Container) {
	life := l.life
	for {
		st, err := runtime.Wait(life, l.recs.sockDir(c.ID))
		if err == nil {
			l.recordExit(c, st)
			return
		}
		if life.Err() != nil {
			return
		}
		// The monitor is gone: it wrote the status before it went, unless
		// it was killed, and then the container may well run on.
		if st, err = runtime.ReadExit(filepath.Join(l.recs.dir(c.ID), "exit.json")); err == nil {
			l.recordExit(c, st)
			return
		}
		if !l.adopt(c) {
			if st, ok := l.outliveMonitor(c); ok {
				l.recordExit(c, st)
			}
			return
		}
	}
}

func (l *Lifecycle) recordExit(c *Container, st shim.ExitStatus) {
	c.mu.Lock()
	l.net.detach(c) // before waiters wake: a stopped container's ports are free
	c.State.Status = container.StateExited
	c.State.Pid, c.State.PidStartTime = 0, 0
	c.State.ExitCode = st.ExitCode
	c.State.Error = st.Error
	c.State.OOMKilled = st.OOMKilled
	c.State.Paused = false
	c.State.FinishedAt = st.FinishedAt
	c.monitorGone = false
	c.dropOutputs()
	if c.next != nil {
		*c.next = exitResult{code: st.ExitCode, err: st.Error}
		c.next = nil
	}
	if c.exitCh != nil {
		close(c.exitCh)
	}
	c.exitCh = make(chan struct{})
	l.recs.keep(c)
	if st.OOMKilled {
		l.ev.forContainer(c, events.ActionOOM)
	}
	l.ev.forContainer(c, events.ActionDie, "exitCode", strconv.Itoa(st.ExitCode))
	l.execs.Exited(c.ID)
	l.unmount(c.ID)
	l.tellContainerEnded()
	autoRemove := c.HostConfig.AutoRemove
	restart := !autoRemove && l.shouldRestart(c, st)
	c.mu.Unlock()
	switch {
	case autoRemove:
		if err := l.remove(context.Background(), c.ID, RemoveOptions{Volumes: true}); err != nil {
			l.log.Warn("auto-remove failed", "id", c.ID, "err", err)
		}
	case restart:
		go l.restartAfterExit(c)
	}
}

// Stop sends the stop signal, waits up to timeout, then kills.
func (l *Lifecycle) Stop(ctx context.Context, ref string, timeout *int, signal string) error {
	c, err := l.recs.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if !c.running() {
		c.mu.Unlock()
		return errNotModified
	}
	c.ManualStop = true
	l.recs.keep(c)
	exitCh := c.exitCh
	sig := syscall.SIGTERM
	if signal == "" {
		signal = c.Config.StopSignal
	}
	if signal != "" {
		if sig, err = parseSignal(signal); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	wait := 10 * time.Second
	if c.Config.StopTimeout != nil {
		wait = time.Duration(*c.Config.StopTimeout) * time.Second
	}
	if timeout != nil {
		wait = time.Duration(*timeout) * time.Second
	}
	ctl := runtime.NewCtl(l.recs.sockDir(c.ID))
	c.mu.Unlock()
	defer ctl.Close()
	if wait != 0 {
		if err := l.control.signal(c, ctl, sig); err != nil {
			// Not fatal: the kill after the timeout is the answer.
			l.log.Warn("sending the stop signal", "id", c.ID, "signal", sig, "err", err)
		}
		c.mu.Lock()
		l.control.thawForSignal(c)
		l.emitKill(c, sig)
		c.mu.Unlock()
	}
	if wait < 0 {
		wait = 365 * 24 * time.Hour
	}
	stopped := func() error {
		c.mu.Lock()
		l.ev.forContainer(c, events.ActionStop)
		c.mu.Unlock()
		return nil
	}
	select {
	case <-exitCh:
		return stopped()
	case <-time.After(wait):
	}
	c.mu.Lock()
	l.emitKill(c, syscall.SIGKILL)
	c.mu.Unlock()
	l.control.killAll(c, ctl)
	select {
	case <-exitCh:
		return stopped()
	case <-time.After(30 * time.Second):
		return fmt.Errorf("container %s did not stop after SIGKILL", c.ID[:12])
	}
}

// Kill sends a signal to the container's init process. With SIGKILL it
// returns once the container has exited, as Docker's does: clients
// inspect or remove it right after.
func (l *Lifecycle) Kill(ctx context.Context, ref, signal string) error {
	c, err := l.recs.get(ref)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if signal != "" {
		if sig, err = parseSignal(signal); err != nil {
			return err
		}
	}
	c.mu.Lock()
	running := c.running()
	if running && (sig == syscall.SIGKILL || sig == syscall.SIGTERM) {
		c.ManualStop = true
		l.recs.keep(c)
	}
	exitCh := c.exitCh
	c.mu.Unlock()
	if !running {
		return errdefs.Conflictf("Cannot kill container: %s: container %s is not running", ref, c.ID)
	}
	ctl := runtime.NewCtl(l.recs.sockDir(c.ID))
	defer ctl.Close()
	err = l.control.signal(c, ctl, sig)
	c.mu.Lock()
	l.control.thawForSignal(c)
	if err == nil {
		l.emitKill(c, sig)
	}
	c.mu.Unlock()
	if err != nil || sig != syscall.SIGKILL {
		return err
	}
	select {
	case <-exitCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second):
	}
	// Its init is dead or dying, but something holds the container up
	// (a process of it outside its pid namespace): the cgroup goes too.
	l.control.killAll(c, ctl)
	select {
	case <-exitCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(20 * time.Second):
		return fmt.Errorf("container %s did not exit after SIGKILL", c.ID[:12])
	}
}

// emitKill announces a signal sent to a container, as Docker does before
// the die (and, for a stop, the stop) that may follow. Callers hold c.mu.
func (l *Lifecycle) emitKill(c *Container, sig syscall.Signal) {
	l.ev.forContainer(c, events.ActionKill, "signal", strconv.Itoa(int(sig)))
}

// WaitFor registers a wait now and returns the function that blocks until
// it is met. The API registers before it answers with headers: the docker
// CLI starts the container as soon as it has them, and a "next-exit" taken
// after a quick container's exit would wait for an exit that never comes.
func (l *Lifecycle) WaitFor(ref string, condition container.WaitCondition) (func(context.Context) (container.WaitResponse, error), error) {
	c, err := l.recs.get(ref)
	if err != nil {
		return nil, err
	}
	switch condition {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return nil, errdefs.InvalidArgumentf("invalid condition: %q", condition)
	}
	c.mu.Lock()
	exitCh, removedCh := c.exitCh, c.removedCh
	running := c.running()
	code := c.State.ExitCode
	if c.next == nil {
		c.next = &exitResult{}
	}
	next := c.next
	c.mu.Unlock()
	var until <-chan struct{}
	switch {
	case condition == container.WaitConditionRemoved:
		until = removedCh
	case condition == container.WaitConditionNextExit, running:
		until = exitCh
	default: // not running already
		return func(context.Context) (container.WaitResponse, error) {
			return container.WaitResponse{StatusCode: int64(code)}, nil
		}, nil
	}
	return func(ctx context.Context) (container.WaitResponse, error) {
		select {
		case <-until:
		case <-ctx.Done():
			return container.WaitResponse{}, ctx.Err()
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		// The exit of the run waited for, not State: a restart may have
		// started the next run already.
		res := exitResult{code: c.State.ExitCode, err: c.State.Error}
		if until == exitCh {
			res = *next
		}
		resp := container.WaitResponse{StatusCode: int64(res.code)}
		if res.err != "" {
			resp.Error = &container.WaitExitError{Message: res.err}
		}
		return resp, nil
	}, nil
}

// Restart stops (if running) and starts a container.
func (l *Lifecycle) Restart(ctx context.Context, ref string, timeout *int, signal string) error {
	c, err := l.recs.get(ref)
	if err != nil {
		return err
	}
	// A --rm container is restarted, not removed, by the exit the stop
	// causes (Docker's rule): auto-removal is off until it runs again.
	c.mu.Lock()
	autoRemove := c.HostConfig.AutoRemove
	c.HostConfig.AutoRemove = false
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.HostConfig.AutoRemove = autoRemove
		if err := l.recs.save(c); err != nil {
			l.log.Warn("saving a restarted container's record", "id", c.ID, "err", err)
		}
		c.mu.Unlock()
	}()
	if err := l.Stop(ctx, ref, timeout, signal); err != nil && !IsNotModified(err) {
		return err
	}
	err = l.Start(ctx, ref)
	if IsNotModified(err) {
		return nil
	}
	return err
}

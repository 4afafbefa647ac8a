package daemon

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/runtime"
)

// Exec is one `docker exec`: created, then started once.
type Exec struct {
	mu          sync.Mutex
	ID          string
	ContainerID string
	Config      container.ExecCreateRequest
	started     bool
	running     bool
	exitCode    *int
	ended       time.Time // when it ended; zero while it may still run
	pid         int
	proc        *runtime.ExecProcess
}

// execKeep is how long an ended exec stays inspectable. Execs are also
// dropped with their container: before, every exec stayed in memory for
// the daemon's life (about 33 KB each).
const execKeep = 5 * time.Minute

type execStore struct {
	mu sync.Mutex
	m  map[string]*Exec
}

// ExecCreate records an exec for a running container.
func (s *Containers) ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error) {
	c, err := s.Get(ref)
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
	if req.DetachKeys != "" {
		if _, err := detachKeys(req.DetachKeys); err != nil {
			return "", errdefs.InvalidArgumentf("Invalid escape keys (%s) provided", req.DetachKeys)
		}
	}
	e := &Exec{ID: newID(), ContainerID: c.ID, Config: req}
	s.execs.mu.Lock()
	if s.execs.m == nil {
		s.execs.m = map[string]*Exec{}
	}
	s.execs.m[e.ID] = e
	s.dropEndedExecsLocked(time.Now().Add(-execKeep))
	s.execs.mu.Unlock()
	s.emit(c, execAction(events.ActionExecCreate, req.Cmd), "execID", e.ID)
	return e.ID, nil
}

// execAction is Docker's action for an exec event: the action, a colon
// and the command, which clients filter on.
func execAction(a events.Action, cmd []string) events.Action {
	return events.Action(string(a) + ": " + strings.Join(cmd, " "))
}

// emitExec sends an exec event for e's container, if it still exists.
func (s *Containers) emitExec(e *Exec, a events.Action, extra ...string) {
	c, err := s.Get(e.ContainerID)
	if err != nil {
		return
	}
	s.emit(c, a, append([]string{"execID", e.ID}, extra...)...)
}

func (s *Containers) getExec(id string) (*Exec, error) {
	s.execs.mu.Lock()
	defer s.execs.mu.Unlock()
	if e, ok := s.execs.m[id]; ok {
		return e, nil
	}
	return nil, errdefs.NotFoundf("No such exec instance: %s", id)
}

// ExecStartOptions are POST /exec/{id}/start's.
type ExecStartOptions struct {
	// ConsoleSize overrides the size given at creation (height, width).
	ConsoleSize *[2]uint
	// Tty frames the client's stream: raw output (stdout only) when true,
	// Docker's multiplexed frames when false. It is the start request's
	// Tty, which need not be the exec's: Docker frames by the request.
	Tty bool
}

// ExecStart runs an exec, its stream framed by the exec's own Tty.
func (s *Containers) ExecStart(ctx context.Context, id string, consoleSize *[2]uint, client AttachStream) error {
	e, err := s.getExec(id)
	if err != nil {
		return err
	}
	return s.ExecStartWith(ctx, id, ExecStartOptions{ConsoleSize: consoleSize, Tty: e.Config.Tty}, client)
}

// ExecStartWith runs an exec. With a client it streams (framed, or raw as
// opts.Tty says) and returns when the process has ended or the client has
// detached (the detach keys, on an exec with a tty), which leaves the
// process running; without a client it returns at once. A command that
// cannot start is reported on the stream with Docker's exit code 126.
func (s *Containers) ExecStartWith(ctx context.Context, id string, opts ExecStartOptions, client AttachStream) error {
	consoleSize := opts.ConsoleSize
	e, err := s.getExec(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errdefs.Conflictf("exec %s has already been started", id)
	}
	e.started = true
	e.mu.Unlock()
	c, err := s.Get(e.ContainerID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	pid := c.State.Pid
	env := mergeEnv(c.Config.Env, e.Config.Env)
	cwd := e.Config.WorkingDir
	if cwd == "" {
		cwd = c.Config.WorkingDir
	}
	user := e.Config.User
	if user == "" {
		maps, err := idMapsFor(c.HostConfig.UsernsMode)
		if err != nil {
			c.mu.Unlock()
			return err
		}
		user = containerUser(c, maps)
	}
	c.mu.Unlock()
	if cwd == "" {
		cwd = "/"
	}
	tty := e.Config.Tty
	spec := runtime.ExecSpec{Args: e.Config.Cmd, Env: env, Cwd: cwd, Tty: tty, Runtime: s.runtimeBinary(c)}
	if consoleSize == nil {
		consoleSize = e.Config.ConsoleSize
	}
	if consoleSize != nil {
		spec.Height, spec.Width = uint16(consoleSize[0]), uint16(consoleSize[1])
	}
	uid, gid, groups, err := resolveUser(fmt.Sprintf("/proc/%d/root", pid), user)
	if err != nil {
		return err
	}
	spec.UID, spec.GID, spec.AdditionalGids = uid, gid, groups
	var out, errw io.Writer = io.Discard, io.Discard
	var input *detachWatch // a tty's input, whose end ends the stream
	if client != nil {
		switch {
		case opts.Tty: // raw: stdout only, as Docker has no stream for stderr
			if e.Config.AttachStdout || tty {
				out = client
			}
		default:
			if e.Config.AttachStdout {
				out = runtime.FrameWriter{W: client, Stream: runtime.StreamStdout}
			}
			if e.Config.AttachStderr {
				errw = runtime.FrameWriter{W: client, Stream: runtime.StreamStderr}
			}
		}
		if e.Config.AttachStdin {
			spec.Stdin = client
			if tty {
				// The keys were checked at creation.
				keys, _ := detachKeys(e.Config.DetachKeys)
				input = &detachWatch{r: detachable(client, keys), ended: make(chan struct{})}
				spec.Stdin = input
			}
		}
	}
	spec.Stdout, spec.Stderr = out, errw
	proc, err := runtime.Exec(s.stateRoot, e.ContainerID, spec)
	if err != nil {
		// Docker's code for an exec that could not start, whatever the
		// cause (127 is a shell's "not found", not the runtime's).
		code := 126
		e.mu.Lock()
		e.exitCode, e.ended = &code, time.Now()
		e.mu.Unlock()
		msg := "OCI runtime exec failed: " + err.Error() + "\r\n"
		if client != nil {
			if opts.Tty {
				_, _ = io.WriteString(client, msg) // best effort: the error is also the exec's result
			} else {
				_ = runtime.WriteFrame(client, runtime.StreamStderr, []byte(msg)) // best effort: the error is also the exec's result
			}
			return nil
		}
		return err
	}
	s.joinCgroup(e.ContainerID, proc.Pid)
	e.mu.Lock()
	e.proc, e.running, e.pid = proc, true, proc.Pid
	e.mu.Unlock()
	s.emitExec(e, execAction(events.ActionExecStart, e.Config.Cmd))
	finish := func() {
		code := proc.Wait()
		e.mu.Lock()
		// The ended exec stays inspectable for execKeep; its process
		// (libcontainer's loaded state, the client's stream) is let go now.
		e.running, e.exitCode, e.ended, e.proc = false, &code, time.Now(), nil
		e.mu.Unlock()
		s.emitExec(e, events.ActionExecDie, "exitCode", strconv.Itoa(code))
	}
	if client == nil {
		go finish()
		return nil
	}
	if input == nil {
		finish()
		return nil
	}
	// With a tty, the end of the client's input (its detach keys, or its
	// terminal gone) ends the stream and leaves the process running, as
	// in Docker.
	ended := make(chan struct{})
	go func() { finish(); close(ended) }()
	select {
	case <-ended:
	case <-input.ended:
		if input.detached {
			s.emitExec(e, events.ActionExecDetach)
		}
	}
	return nil
}

// detachWatch passes a client's input on and closes ended when it ends;
// detached says it ended with the detach keys. detached is set before
// ended is closed.
type detachWatch struct {
	r        io.Reader
	ended    chan struct{}
	detached bool
	once     sync.Once
}

func (d *detachWatch) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil {
		d.once.Do(func() { d.detached = isDetach(err); close(d.ended) })
	}
	return n, err
}

// ExecResize sets an exec's tty size.
func (s *Containers) ExecResize(id string, height, width uint) error {
	e, err := s.getExec(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	proc, running := e.proc, e.running
	e.mu.Unlock()
	// An exec that has ended (or not started) has no terminal to size.
	if proc == nil || !running {
		return errdefs.Conflictf("exec %s is not running", id)
	}
	return proc.Resize(uint16(width), uint16(height))
}

// ExecInspect reports an exec.
func (s *Containers) ExecInspect(id string) (container.ExecInspectResponse, error) {
	e, err := s.getExec(id)
	if err != nil {
		return container.ExecInspectResponse{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var args []string
	if len(e.Config.Cmd) > 1 {
		args = e.Config.Cmd[1:]
	}
	return container.ExecInspectResponse{
		ID: e.ID, Running: e.running, ExitCode: e.exitCode, ContainerID: e.ContainerID, Pid: e.pid,
		OpenStdin: e.Config.AttachStdin, OpenStdout: e.Config.AttachStdout, OpenStderr: e.Config.AttachStderr,
		ProcessConfig: &container.ExecProcessConfig{Tty: e.Config.Tty, Entrypoint: e.Config.Cmd[0], Arguments: args, User: e.Config.User},
	}, nil
}

// ExecTTY reports whether an exec has a tty, for the response's content type.
func (s *Containers) ExecTTY(id string) (bool, error) {
	e, err := s.getExec(id)
	if err != nil {
		return false, err
	}
	return e.Config.Tty, nil
}

// dropEndedExecsLocked forgets execs that ended before cutoff. Callers
// hold s.execs.mu.
func (s *Containers) dropEndedExecsLocked(cutoff time.Time) {
	for id, e := range s.execs.m {
		e.mu.Lock()
		old := !e.ended.IsZero() && e.ended.Before(cutoff)
		e.mu.Unlock()
		if old {
			delete(s.execs.m, id)
		}
	}
}

// dropExecs forgets every exec of a removed container.
func (s *Containers) dropExecs(containerID string) {
	s.execs.mu.Lock()
	defer s.execs.mu.Unlock()
	for id, e := range s.execs.m {
		if e.ContainerID == containerID {
			delete(s.execs.m, id)
		}
	}
}

// execCount is how many execs lodged keeps, for tests.
func (s *Containers) execCount() int {
	s.execs.mu.Lock()
	defer s.execs.mu.Unlock()
	return len(s.execs.m)
}

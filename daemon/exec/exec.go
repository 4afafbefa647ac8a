package exec

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/lodge-containers/lodge/daemon/stream"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/runtime"
	"github.com/lodge-containers/lodge/shim"
)

// Containers is what the exec table needs of the container service. Each
// method reads a container's record under that container's own lock.
type Containers interface {
	// Admit checks that container ref can run req now and returns its
	// full ID: errdefs.ErrNotFound, ErrConflict (paused, not running) or
	// ErrInvalidArgument (no command, a bad environment), with Docker's
	// messages.
	Admit(ref string, req container.ExecCreateRequest) (id string, err error)
	// Process settles how req's process starts in container id: its
	// environment, working directory, user (resolved in the container's
	// root) and runtime. The caller fills in the command and the stdio.
	Process(id string, req container.ExecCreateRequest) (runtime.ExecSpec, error)
	// Joined moves pid, just started, into container id's cgroup.
	Joined(id string, pid int)
	// Emit publishes an event of container id, if it still exists.
	Emit(id string, a events.Action, attrs ...string)
}

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

// Keep is how long an ended exec stays inspectable. Execs are also
// dropped with their container (Removed), and those never started when it
// exits (Exited): before, every exec stayed in memory for the daemon's
// life (about 33 KB each).
const Keep = 5 * time.Minute

// Service is the exec table. It is safe for concurrent use.
type Service struct {
	stateRoot  string
	containers Containers
	// Log receives the runtime's debug notes on execs; nil for none.
	Log *slog.Logger

	mu sync.Mutex
	// byContainer holds each container's execs by ID: they are its
	// own, and go with it.
	byContainer map[string]map[string]*Exec
}

// New makes the exec table for containers whose runtime state lives under
// stateRoot.
func New(stateRoot string, containers Containers) *Service {
	return &Service{stateRoot: stateRoot, containers: containers, byContainer: map[string]map[string]*Exec{}}
}

// ExecCreate records an exec for a running container.
func (s *Service) ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error) {
	cid, err := s.containers.Admit(ref, req)
	if err != nil {
		return "", err
	}
	if req.DetachKeys != "" {
		if _, err := stream.DetachKeys(req.DetachKeys); err != nil {
			return "", errdefs.InvalidArgumentf("Invalid escape keys (%s) provided", req.DetachKeys)
		}
	}
	e := &Exec{ID: newID(), ContainerID: cid, Config: req}
	s.mu.Lock()
	if s.byContainer[cid] == nil {
		s.byContainer[cid] = map[string]*Exec{}
	}
	s.byContainer[cid][e.ID] = e
	s.dropEndedLocked(time.Now().Add(-Keep))
	s.mu.Unlock()
	s.containers.Emit(cid, action(events.ActionExecCreate, req.Cmd), "execID", e.ID)
	return e.ID, nil
}

// newID is a new exec's ID: 64 hex digits, as Docker's.
func newID() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b[:])
}

// action is Docker's action for an exec event: the action, a colon and
// the command, which clients filter on.
func action(a events.Action, cmd []string) events.Action {
	return events.Action(string(a) + ": " + strings.Join(cmd, " "))
}

// emit sends an exec event for e's container, if it still exists.
func (s *Service) emit(e *Exec, a events.Action, extra ...string) {
	s.containers.Emit(e.ContainerID, a, append([]string{"execID", e.ID}, extra...)...)
}

func (s *Service) get(id string) (*Exec, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.byContainer {
		if e, ok := m[id]; ok {
			return e, nil
		}
	}
	return nil, errdefs.NotFoundf("No such exec instance: %s", id)
}

// StartOptions are POST /exec/{id}/start's.
type StartOptions struct {
	// ConsoleSize overrides the size given at creation (height, width).
	ConsoleSize *[2]uint
	// Tty frames the client's stream: raw output (stdout only) when true,
	// Docker's multiplexed frames when false. It is the start request's
	// Tty, which need not be the exec's: Docker frames by the request.
	Tty bool
	// NoDetachKeys passes every byte of a tty's input on: the CRI's
	// clients have no detach keys, and ctrl-p is theirs to type.
	NoDetachKeys bool
}

// ExecStart runs an exec, its stream framed by the exec's own Tty.
func (s *Service) ExecStart(ctx context.Context, id string, consoleSize *[2]uint, client stream.Stream) error {
	e, err := s.get(id)
	if err != nil {
		return err
	}
	return s.ExecStartWith(ctx, id, StartOptions{ConsoleSize: consoleSize, Tty: e.Config.Tty}, client)
}

// ExecStartWith runs an exec. With a client it streams (framed, or raw as
// opts.Tty says) and returns when the process has ended or the client has
// detached (the detach keys, on an exec with a tty), which leaves the
// process running; without a client it returns at once. A command that
// cannot start is reported on the stream with Docker's exit code 126.
func (s *Service) ExecStartWith(ctx context.Context, id string, opts StartOptions, client stream.Stream) error {
	consoleSize := opts.ConsoleSize
	e, err := s.get(id)
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
	spec, err := s.containers.Process(e.ContainerID, e.Config)
	if err != nil {
		return err
	}
	tty := e.Config.Tty
	spec.Args, spec.Tty = e.Config.Cmd, tty
	if consoleSize == nil {
		consoleSize = e.Config.ConsoleSize
	}
	if consoleSize != nil {
		spec.Height, spec.Width = uint16(consoleSize[0]), uint16(consoleSize[1])
	}
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
				out = shim.FrameWriter{W: client, Stream: shim.StreamStdout}
			}
			if e.Config.AttachStderr {
				errw = shim.FrameWriter{W: client, Stream: shim.StreamStderr}
			}
		}
		if e.Config.AttachStdin {
			spec.Stdin = client
			if tty {
				var r io.Reader = client
				if !opts.NoDetachKeys {
					// The keys were checked at creation.
					keys, _ := stream.DetachKeys(e.Config.DetachKeys)
					r = stream.Detachable(client, keys)
				}
				input = &detachWatch{r: r, ended: make(chan struct{})}
				spec.Stdin = input
			}
		}
	}
	spec.Stdout, spec.Stderr = out, errw
	spec.Log = s.Log
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
				_ = shim.WriteFrame(client, shim.StreamStderr, []byte(msg)) // best effort: the error is also the exec's result
			}
			return nil
		}
		return err
	}
	s.containers.Joined(e.ContainerID, proc.Pid)
	e.mu.Lock()
	e.proc, e.running, e.pid = proc, true, proc.Pid
	e.mu.Unlock()
	s.emit(e, action(events.ActionExecStart, e.Config.Cmd))
	finish := func() {
		code := proc.Wait()
		e.mu.Lock()
		// The ended exec stays inspectable for Keep; its process
		// (libcontainer's loaded state, the client's stream) is let go now.
		e.running, e.exitCode, e.ended, e.proc = false, &code, time.Now(), nil
		e.mu.Unlock()
		s.emit(e, events.ActionExecDie, "exitCode", strconv.Itoa(code))
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
			s.emit(e, events.ActionExecDetach)
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
		d.once.Do(func() { d.detached = stream.IsDetach(err); close(d.ended) })
	}
	return n, err
}

// ExecResize sets an exec's tty size.
func (s *Service) ExecResize(id string, height, width uint) error {
	e, err := s.get(id)
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
func (s *Service) ExecInspect(id string) (container.ExecInspectResponse, error) {
	e, err := s.get(id)
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
func (s *Service) ExecTTY(id string) (bool, error) {
	e, err := s.get(id)
	if err != nil {
		return false, err
	}
	return e.Config.Tty, nil
}

// Kill sends sig to a started exec's process, if it runs; an exec that
// has none, or is unknown, is left as it is.
func (s *Service) Kill(id string, sig syscall.Signal) {
	e, err := s.get(id)
	if err != nil {
		return
	}
	e.mu.Lock()
	pid := e.pid
	e.mu.Unlock()
	if pid > 0 {
		_ = syscall.Kill(pid, sig) // already gone is as good
	}
}

// Forget drops one exec (a health probe's, once read).
func (s *Service) Forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cid, m := range s.byContainer {
		if _, ok := m[id]; ok {
			delete(m, id)
			if len(m) == 0 {
				delete(s.byContainer, cid)
			}
			return
		}
	}
}

// Exited drops the execs of a container that has exited and were never
// started: none of them can run any more. Those that ran stay
// inspectable for Keep.
func (s *Service) Exited(containerID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.byContainer[containerID]
	for id, e := range m {
		e.mu.Lock()
		unstarted := !e.started
		e.mu.Unlock()
		if unstarted {
			delete(m, id)
		}
	}
	if len(m) == 0 {
		delete(s.byContainer, containerID)
	}
}

// Removed drops every exec of a removed container.
func (s *Service) Removed(containerID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byContainer, containerID)
}

// dropEndedLocked forgets execs that ended before cutoff. Callers hold
// s.mu.
func (s *Service) dropEndedLocked(cutoff time.Time) {
	for cid, m := range s.byContainer {
		for id, e := range m {
			e.mu.Lock()
			old := !e.ended.IsZero() && e.ended.Before(cutoff)
			e.mu.Unlock()
			if old {
				delete(m, id)
			}
		}
		if len(m) == 0 {
			delete(s.byContainer, cid)
		}
	}
}

// Len is how many execs the table keeps.
func (s *Service) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.byContainer {
		n += len(m)
	}
	return n
}

package daemon

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/moby/moby/api/types/container"

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
	pid         int
	proc        *runtime.ExecProcess
}

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
	e := &Exec{ID: newID(), ContainerID: c.ID, Config: req}
	s.execs.mu.Lock()
	if s.execs.m == nil {
		s.execs.m = map[string]*Exec{}
	}
	s.execs.m[e.ID] = e
	s.execs.mu.Unlock()
	return e.ID, nil
}

func (s *Containers) getExec(id string) (*Exec, error) {
	s.execs.mu.Lock()
	defer s.execs.mu.Unlock()
	if e, ok := s.execs.m[id]; ok {
		return e, nil
	}
	return nil, errdefs.NotFoundf("No such exec instance: %s", id)
}

// ExecStart runs an exec. With a client it streams (framed, or raw with a
// tty) and returns when the process has ended; detached it returns at once.
// A command that cannot start is reported on the stream with Docker's
// exit codes (127 not found, 126 not executable).
func (s *Containers) ExecStart(ctx context.Context, id string, consoleSize *[2]uint, client AttachStream) error {
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
	if client != nil {
		if tty {
			out = client
		} else {
			if e.Config.AttachStdout {
				out = runtime.FrameWriter{W: client, Stream: runtime.StreamStdout}
			}
			if e.Config.AttachStderr {
				errw = runtime.FrameWriter{W: client, Stream: runtime.StreamStderr}
			}
		}
		if e.Config.AttachStdin {
			spec.Stdin = client
		}
	}
	spec.Stdout, spec.Stderr = out, errw
	proc, err := runtime.Exec(s.stateRoot, e.ContainerID, spec)
	if err != nil {
		code := runtime.FailureCode(err.Error())
		if code == 0 {
			code = 126
		}
		e.mu.Lock()
		e.exitCode = &code
		e.mu.Unlock()
		msg := "OCI runtime exec failed: " + err.Error() + "\r\n"
		if client != nil {
			if tty {
				io.WriteString(client, msg)
			} else {
				runtime.WriteFrame(client, runtime.StreamStderr, []byte(msg))
			}
			return nil
		}
		return err
	}
	s.joinCgroup(e.ContainerID, proc.Pid)
	e.mu.Lock()
	e.proc, e.running, e.pid = proc, true, proc.Pid
	e.mu.Unlock()
	finish := func() {
		code := proc.Wait()
		e.mu.Lock()
		e.running, e.exitCode = false, &code
		e.mu.Unlock()
	}
	if client == nil {
		go finish()
		return nil
	}
	finish()
	return nil
}

// ExecResize sets an exec's tty size.
func (s *Containers) ExecResize(id string, height, width uint) error {
	e, err := s.getExec(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	proc := e.proc
	e.mu.Unlock()
	if proc == nil {
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

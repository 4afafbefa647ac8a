package runtime

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/shim"
)

// ExecSpec describes a process to run in a running container.
type ExecSpec struct {
	Args           []string
	Env            []string
	Cwd            string
	UID, GID       int
	AdditionalGids []int
	Tty            bool
	Width, Height  uint16
	// Stdin is nil when the process gets no input.
	Stdin io.Reader
	// Stdout and Stderr receive the output; with Tty, everything goes to
	// Stdout.
	Stdout, Stderr io.Writer
	// Runtime is the OCI runtime binary the container runs on, "" for the
	// embedded libcontainer.
	Runtime string
	// Log receives, at debug level, why an exec could not go through
	// lodge-exec; nil for nowhere.
	Log *slog.Logger
}

// ExecProcess is a running exec. Its methods are safe for concurrent use.
type ExecProcess struct {
	wait    func() int // the exit code, once the process has ended
	console *os.File
	pumps   sync.WaitGroup
	Pid     int
}

// Exec starts a process in the running container id (libcontainer state in
// stateRoot). The process is a child of the caller. An executable that
// cannot be found or run is an error whose message says so.
func Exec(stateRoot, id string, spec ExecSpec) (*ExecProcess, error) {
	if spec.Runtime != "" {
		return ociExec(stateRoot, id, spec)
	}
	if exe, err := CExecBinary(); err == nil {
		plan, err := execPlanFor(stateRoot, id)
		if err == nil {
			return helperExec(exe, plan, stateRoot, id, spec)
		}
		if spec.Log != nil {
			spec.Log.Debug("exec through lodge-monitor: no exec plan", "container", id, "err", err)
		}
	} else if spec.Log != nil {
		spec.Log.Debug("exec through lodge-monitor: lodge-exec is not installed", "err", err)
	}
	if exe, ok := execHelper(); ok {
		return helperExec(exe, "", stateRoot, id, spec)
	}
	c, err := libcontainer.Load(stateRoot, id)
	if err != nil {
		return nil, fmt.Errorf("container %s is not running here: %w", id, err)
	}
	p := &libcontainer.Process{
		Args: spec.Args, Env: spec.Env, Cwd: spec.Cwd,
		UID: spec.UID, GID: spec.GID, AdditionalGroups: spec.AdditionalGids,
	}
	e := &ExecProcess{wait: func() int { return processExitCode(p) }}
	var consoleParent *os.File
	var childEnds []*os.File
	if spec.Tty {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		consoleParent = os.NewFile(uintptr(pair[0]), "console-parent")
		defer consoleParent.Close()
		child := os.NewFile(uintptr(pair[1]), "console-child")
		p.ConsoleSocket = child
		p.ConsoleWidth, p.ConsoleHeight = spec.Width, spec.Height
		childEnds = append(childEnds, child)
	} else {
		in, out, errw, err := e.plumb(spec)
		if err != nil {
			return nil, err
		}
		if in != nil {
			p.Stdin = in
		}
		p.Stdout, p.Stderr = out, errw
		childEnds = append(childEnds, in, out, errw)
	}
	err = c.Run(p)
	closeAll(childEnds)
	if err != nil {
		return nil, err
	}
	if consoleParent != nil {
		master, err := recvFd(consoleParent)
		if err != nil {
			kerr := killGone(p.Signal(syscall.SIGKILL))
			if kerr == nil {
				_, _ = p.Wait() // only to reap it: it was killed
			}
			return nil, errors.Join(fmt.Errorf("receiving the exec's console: %w", err), kerr)
		}
		e.useConsole(master, spec)
	}
	e.Pid, _ = p.Pid()
	return e, nil
}

// plumb makes the pipes of an exec without a tty: it returns the child's
// ends (stdin nil without input) and copies the parent's ends to and from
// spec's streams.
func (e *ExecProcess) plumb(spec ExecSpec) (stdin, stdout, stderr *os.File, err error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll([]*os.File{outR, outW})
		return nil, nil, nil, err
	}
	if spec.Stdin != nil {
		inR, inW, err := os.Pipe()
		if err != nil {
			closeAll([]*os.File{outR, outW, errR, errW})
			return nil, nil, nil, err
		}
		stdin = inR
		go func() {
			// A copy ends when the client's input ends or the process
			// stops reading (EPIPE): either way its stdin is closed, which
			// is all the process can be told.
			_, _ = io.Copy(inW, spec.Stdin)
			inW.Close()
		}()
	}
	e.pump(outR, spec.Stdout)
	e.pump(errR, spec.Stderr)
	return stdin, outW, errW, nil
}

// useConsole makes master the exec's tty: output to spec.Stdout, input from
// spec.Stdin. The end of the input leaves the tty open and the process
// running, as Docker does: the client detached, or lost its terminal.
func (e *ExecProcess) useConsole(master *os.File, spec ExecSpec) {
	e.console = master
	e.pump(master, spec.Stdout)
	if spec.Stdin != nil {
		// As plumb's stdin copy; the tty stays open (see above).
		go func() { _, _ = io.Copy(master, spec.Stdin) }()
	}
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

func (e *ExecProcess) pump(r *os.File, w io.Writer) {
	e.pumps.Add(1)
	go func() {
		defer e.pumps.Done()
		defer r.Close()
		if w == nil {
			w = io.Discard
		}
		// The first copy ends with the output (EOF, or EIO on a tty whose
		// last slave closed) or with a client that went away (detached):
		// that one must not stall the process on a full pipe or tty, so
		// the rest of its output is dropped. Neither end has anyone to
		// tell: the exec's result is its exit code.
		_, _ = io.Copy(w, r)
		_, _ = io.Copy(io.Discard, r)
	}()
}

// Wait waits for the process and its output, and returns its exit code
// (128+signal when killed).
func (e *ExecProcess) Wait() int {
	code := e.wait()
	shim.WaitTimeout(&e.pumps, 2*time.Second)
	if e.console != nil {
		e.console.Close()
	}
	return code
}

// Resize sets the exec's tty size.
func (e *ExecProcess) Resize(width, height uint16) error {
	if e.console == nil {
		return fmt.Errorf("exec has no tty")
	}
	return unix.IoctlSetWinsize(int(e.console.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: height, Col: width})
}

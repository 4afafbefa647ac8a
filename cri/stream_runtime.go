package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/lodge-containers/lodge/daemon"
	"github.com/lodge-containers/lodge/daemon/exec"
	"github.com/lodge-containers/lodge/errdefs"
)

// Attacher connects a client to a running container's stdio and sizes its
// tty (daemon.ContainerAPI fits).
type Attacher interface {
	Attach(ctx context.Context, ref string, opts daemon.AttachOptions, client daemon.AttachStream) error
	Resize(ctx context.Context, ref string, height, width uint) error
}

// PodDialer reaches a pod's own ports.
type PodDialer interface {
	// DialPod connects to port on localhost inside the network namespace
	// of the running sandbox with this ID, and nowhere else: no host
	// port, no other namespace. The caller closes the connection.
	DialPod(ctx context.Context, sandboxID string, port int32) (net.Conn, error)
}

// execResizer sizes a running exec's tty (*exec.Service fits); an exec
// table without it runs execs at the size they start with.
type execResizer interface {
	ExecResize(id string, height, width uint) error
}

// streamRuntime is the streaming library's view of lodge: it runs what a
// one-time URL was handed out for.
type streamRuntime struct{ s *Server }

var _ streaming.Runtime = streamRuntime{}

// Exec runs cmd in a container through the exec table, with the streams
// the request asked for; a non-zero exit is a utilexec.ExitError, which
// the library reports to the client with its code. With a tty, the end of
// the client's input ends the stream (the exec table's rule, Docker's);
// a command still running then is killed, as containerd kills an exec
// whose stream has ended: nothing can reach it again.
func (r streamRuntime) Exec(ctx context.Context, containerID string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	execs := r.s.b.Execs
	id, err := execs.ExecCreate(ctx, containerID, container.ExecCreateRequest{
		Cmd: cmd, Tty: tty, AttachStdin: in != nil, AttachStdout: out != nil, AttachStderr: errw != nil,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if rz, ok := execs.(execResizer); ok && tty && resize != nil {
		go r.resizeExec(ctx, rz, id, resize)
	}
	client, wait := newStreamClient(in, out, errw, tty)
	err = execs.ExecStartWith(ctx, id, exec.StartOptions{Tty: tty, NoDetachKeys: true}, client)
	wait()
	if err != nil {
		return err
	}
	ins, err := execs.ExecInspect(id)
	if err != nil {
		return err
	}
	if ins.Running {
		execs.Kill(id, syscall.SIGKILL)
		return fmt.Errorf("exec %s: its stream ended before it did; killed", id)
	}
	if ins.ExitCode == nil {
		return fmt.Errorf("exec %s: no exit code after its end", id)
	}
	if code := *ins.ExitCode; code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return nil
}

// resizeExec passes a client's terminal sizes to an exec. The first size
// usually comes before the process has started: it is tried again until
// the exec runs or has ended.
func (r streamRuntime) resizeExec(ctx context.Context, rz execResizer, id string, resize <-chan remotecommand.TerminalSize) {
	for {
		var size remotecommand.TerminalSize
		select {
		case <-ctx.Done():
			return
		case s, ok := <-resize:
			if !ok {
				return
			}
			size = s
		}
		for {
			err := rz.ExecResize(id, uint(size.Height), uint(size.Width))
			if err == nil || !errors.Is(err, errdefs.ErrConflict) {
				break
			}
			// Not running: not yet, or no more.
			if ins, ierr := r.s.b.Execs.ExecInspect(id); ierr != nil || ins.ExitCode != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// Attach connects the client to a running container's stdio until its
// output ends (the container exits), the client leaves, or, with a tty,
// its input ends.
func (r streamRuntime) Attach(ctx context.Context, containerID string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	// Checked again now the client is here: lodge's attach to a stopped
	// container waits for its next start, which a CRI container, never
	// restarted by lodge, would not see.
	if _, err := r.s.runningCtr(containerID); err != nil {
		return err
	}
	a := r.s.b.Attach
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if tty && resize != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case size, ok := <-resize:
					if !ok {
						return
					}
					if err := a.Resize(ctx, containerID, uint(size.Height), uint(size.Width)); err != nil {
						r.s.log.Debug("resizing an attached tty", "container", containerID, "err", err)
					}
				}
			}
		}()
	}
	client, wait := newStreamClient(in, out, errw, tty)
	err := a.Attach(ctx, containerID, daemon.AttachOptions{
		Stdin: in != nil, Stdout: out != nil, Stderr: errw != nil, Stream: true, NoDetachKeys: true,
	}, client)
	wait()
	return err
}

// PortForward copies between the client's stream and a connection to
// port on localhost in the pod's network namespace, until the pod's side
// has closed (the client's end of input is passed on as a half close).
// The library closes s once this returns.
func (r streamRuntime) PortForward(ctx context.Context, podSandboxID string, port int32, s io.ReadWriteCloser) error {
	conn, err := r.s.b.Pods.DialPod(ctx, podSandboxID, port)
	if err != nil {
		return err
	}
	defer conn.Close() // nothing buffered to lose: the copy is over
	return splice(ctx, conn, s)
}

// podIdleAfterClient is how long the pod's side of a port-forward may stay
// silent once the client has sent all it will: a client that half-closed
// and waits for an answer gets it, and a connection whose client is gone
// (its stream ends the same way) is not kept open for ever by a pod that
// never speaks first.
var podIdleAfterClient = time.Minute

// splice copies both ways between a pod's connection and a client's
// stream. It returns once the pod's side has sent all it will, or has
// been silent for podIdleAfterClient after the client's end of input,
// which half-closes the connection, or when ctx is done.
func splice(ctx context.Context, conn net.Conn, s io.ReadWriter) error {
	var clientDone atomic.Bool
	go func() {
		_, _ = io.Copy(conn, s) // its end, clean or not, is the client's last word
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite() // the pod may have closed already: then the copy down ends too
		}
		clientDone.Store(true)
		_ = conn.SetReadDeadline(time.Now().Add(podIdleAfterClient)) // a closed conn: the copy down has ended
	}()
	down := make(chan error, 1)
	go func() {
		_, err := io.Copy(s, idleReader{conn, &clientDone})
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = nil // the pod had nothing more to say
		}
		down <- err
	}()
	select {
	case err := <-down:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// idleReader reads the pod's side of a port-forward, pushing its read
// deadline on at each read once the client is done.
type idleReader struct {
	conn       net.Conn
	clientDone *atomic.Bool
}

func (r idleReader) Read(p []byte) (int, error) {
	if r.clientDone.Load() {
		_ = r.conn.SetReadDeadline(time.Now().Add(podIdleAfterClient)) // a closed conn fails the read below
	}
	return r.conn.Read(p)
}

// streamClient is the exec table's or attach's client for a CRI stream:
// it reads the client's input, and writes the process's output, raw with
// a tty and in Docker's frames without one, which a goroutine splits
// into the client's stdout and stderr.
type streamClient struct {
	in io.Reader
	w  io.Writer
}

func (c streamClient) Read(p []byte) (int, error) {
	if c.in == nil {
		return 0, io.EOF
	}
	return c.in.Read(p)
}

func (c streamClient) Write(p []byte) (int, error) { return c.w.Write(p) }

// newStreamClient returns the client over a request's streams and wait,
// to be called once the exec or attach has returned: it lets the last of
// the output through.
func newStreamClient(in io.Reader, out, errw io.Writer, tty bool) (streamClient, func()) {
	if out == nil {
		out = io.Discard
	}
	if errw == nil {
		errw = io.Discard
	}
	if tty {
		return streamClient{in: in, w: out}, func() {}
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Its error is a client gone or a cut frame: what came went on.
		_, _ = stdcopy.StdCopy(out, errw, pr)
		_, _ = io.Copy(io.Discard, pr) // the client left: drain, so the process is not blocked
	}()
	return streamClient{in: in, w: pw}, func() {
		_ = pw.Close() // an io.Pipe's Close does not fail
		<-done
	}
}

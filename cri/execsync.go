package cri

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lodge-containers/lodge/daemon/exec"
	"github.com/lodge-containers/lodge/daemon/stream"
)

// Execs is lodge's exec table (*exec.Service fits).
type Execs interface {
	ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error)
	ExecStartWith(ctx context.Context, id string, opts exec.StartOptions, client stream.Stream) error
	ExecInspect(id string) (container.ExecInspectResponse, error)
	Kill(id string, sig syscall.Signal)
}

// maxExecOutput bounds what ExecSync keeps of each stream, as the kubelet
// reads no more of a probe's output.
const maxExecOutput = 16 << 20

// ExecSync runs a command in a running container and returns its output
// (stdout and stderr apart) and exit code; past the timeout it is killed.
func (s *Server) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	c, err := s.ctr(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if len(req.Cmd) == 0 {
		return nil, grpcstatus.Error(codes.InvalidArgument, "no command to run")
	}
	id, err := s.b.Execs.ExecCreate(ctx, c.ID, container.ExecCreateRequest{Cmd: req.Cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	var stdout, stderr bytes.Buffer
	demuxed := make(chan struct{})
	go func() {
		defer close(demuxed)
		// Its error is the pipe's end or a cut frame: what came is kept.
		_, _ = stdcopy.StdCopy(&limited{&stdout, maxExecOutput}, &limited{&stderr, maxExecOutput}, pr)
		_, _ = io.Copy(io.Discard, pr) // past the limit: drain, so the process is not blocked
	}()
	done := make(chan error, 1)
	go func() {
		err := s.b.Execs.ExecStartWith(context.WithoutCancel(ctx), id, exec.StartOptions{}, execStream{pw})
		_ = pw.Close() // an io.Pipe's Close does not fail
		done <- err
	}()
	var timer <-chan time.Time
	if req.Timeout > 0 {
		t := time.NewTimer(time.Duration(req.Timeout) * time.Second)
		defer t.Stop()
		timer = t.C
	}
	select {
	case err = <-done:
	case <-timer:
		s.killExec(id, done)
		<-demuxed
		return nil, grpcstatus.Errorf(codes.DeadlineExceeded, "command %q timed out after %ds", req.Cmd, req.Timeout)
	case <-ctx.Done():
		s.killExec(id, done)
		<-demuxed
		return nil, ctx.Err()
	}
	<-demuxed
	if err != nil {
		return nil, err
	}
	ins, err := s.b.Execs.ExecInspect(id)
	if err != nil {
		return nil, err
	}
	if ins.Running || ins.ExitCode == nil {
		return nil, fmt.Errorf("exec %s: no exit code after its end", id)
	}
	return &runtimeapi.ExecSyncResponse{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: int32(*ins.ExitCode)}, nil
}

// killExec kills an exec that outlived its caller and waits for its end.
func (s *Server) killExec(id string, done <-chan error) {
	s.b.Execs.Kill(id, syscall.SIGKILL)
	if err := <-done; err != nil {
		s.log.Debug("exec killed at its timeout", "exec", id, "err", err)
	}
}

// execStream is an exec's client: it writes Docker's frames into the
// pipe and has no input.
type execStream struct{ w io.Writer }

func (e execStream) Read([]byte) (int, error)    { return 0, io.EOF }
func (e execStream) Write(p []byte) (int, error) { return e.w.Write(p) }

// limited keeps the first n bytes written and drops the rest, reporting
// every write whole so the copy goes on.
type limited struct {
	b *bytes.Buffer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

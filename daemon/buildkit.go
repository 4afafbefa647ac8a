package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lodge-containers/lodge/errdefs"
)

// BuildKit runs lodge-buildkitd, BuildKit embedded in a helper process, and
// reaches it for the API's /grpc and /session. The helper starts on the
// first request, not with lodged: BuildKit's solver, worker and gRPC stack
// would otherwise sit in every lodged's memory whether or not it builds.
// It is started from lodged's daemon stage, so it shares lodged's user,
// mount and network namespaces and dies with it (parent-death signal).
// BuildKit is safe for concurrent use.
type BuildKit struct {
	// Binary is lodge-buildkitd; Runc the runc binary its worker runs
	// steps with.
	Binary, Runc string
	// Root is BuildKit's state, <data-root>/buildkit; Socket the helper's
	// socket in lodged's runtime dir; LodgeSocket lodged's API socket,
	// where the helper loads the images it builds.
	Root, Socket, LodgeSocket string
	Log                       *slog.Logger

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// BuildKitBinary is the helper's name, found beside lodged or on $PATH.
const BuildKitBinary = "lodge-buildkitd"

// startTimeout bounds the helper's start: opening BuildKit's databases
// takes well under a second; more means it is stuck.
const startTimeout = 30 * time.Second

// Dial connects to the helper, starting it first if it is not running (or
// has died). The error is Unavailable when it cannot be started.
func (b *BuildKit) Dial(ctx context.Context) (net.Conn, error) {
	if err := b.ensure(ctx); err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", b.Socket)
	if err != nil {
		return nil, fmt.Errorf("lodge-buildkitd: %v: %w", err, errdefs.ErrUnavailable)
	}
	return c, nil
}

func (b *BuildKit) ensure(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done != nil {
		select {
		case <-b.done:
			b.Log.Warn("lodge-buildkitd had exited: starting it again")
		default:
			return nil
		}
	}
	if b.Binary == "" || b.Runc == "" {
		return fmt.Errorf("BuildKit needs lodge-buildkitd beside lodged and runc on $PATH (binary %q, runc %q): %w", b.Binary, b.Runc, errdefs.ErrNotImplemented)
	}
	cmd := exec.Command(b.Binary, "--root", b.Root, "--socket", b.Socket, "--lodge-socket", b.LodgeSocket, "--runc", b.Runc)
	// SIGTERM lets the helper close BuildKit's bolt databases cleanly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.Stderr = os.Stderr // lodged's own log: the helper says little, and only what matters
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	start := time.Now()
	// The parent-death signal follows the thread that forked, and Go ends
	// a thread when a goroutine exits locked to it, which lodged's do (a
	// network namespace's, a seccomp program's). Forked from any thread,
	// the helper died in the middle of builds: it is forked from a thread
	// that runs nothing else and lives until the helper has exited.
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		goruntime.LockOSThread() // never unlocked: see above
		defer close(done)
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait() // how it ended is in lodged's log, where its stderr goes
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("starting lodge-buildkitd: %v: %w", err, errdefs.ErrUnavailable)
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("unexpected %q", line)
		}
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-time.After(startTimeout):
		err = errors.New("not ready in time")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM) // already gone is what we want
		return fmt.Errorf("lodge-buildkitd did not start (%v; its log is lodged's): %w", err, errdefs.ErrUnavailable)
	}
	b.cmd, b.done = cmd, done
	b.Log.Info("lodge-buildkitd started", "pid", cmd.Process.Pid, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// PruneCache empties BuildKit's cache when the helper runs, for `docker
// builder prune`; a helper that is not running is not started for it.
// It returns what BuildKit removed and the bytes freed.
func (b *BuildKit) PruneCache(ctx context.Context) ([]string, uint64, error) {
	b.mu.Lock()
	running := b.done != nil
	if running {
		select {
		case <-b.done:
			running = false
		default:
		}
	}
	b.mu.Unlock()
	if !running {
		return nil, 0, nil
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", b.Socket)
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://buildkit/lodge/prune", nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("pruning BuildKit's cache: %w", err)
	}
	defer resp.Body.Close()
	var r struct {
		CachesDeleted  []string
		SpaceReclaimed uint64
		Message        string
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, 0, fmt.Errorf("pruning BuildKit's cache: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("pruning BuildKit's cache: %s", r.Message)
	}
	return r.CachesDeleted, r.SpaceReclaimed, nil
}

// Close stops the helper, if it runs, and waits for it briefly.
func (b *BuildKit) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM) // already gone is what we want
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-b.done
	}
}

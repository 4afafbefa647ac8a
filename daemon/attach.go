package daemon

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/lodge-containers/lodge/daemon/logs"
	"github.com/lodge-containers/lodge/daemon/stream"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/runtime"
	"github.com/lodge-containers/lodge/shim"
)

// AttachOptions are POST /containers/{id}/attach's.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
	Stream, Logs          bool
	// DetachKeys is the key sequence that detaches a client from a
	// container with a tty, as docker's --detach-keys spells it
	// ("ctrl-p,ctrl-q", the default when empty).
	DetachKeys string
	// NoDetachKeys passes every byte of a tty's input on: the CRI's
	// clients have no detach keys, and ctrl-p is theirs to type.
	NoDetachKeys bool
}

// AttachStream is the client side of an attach or an exec (stream.Stream).
type AttachStream = stream.Stream

type pendingAttach struct {
	opts   AttachOptions
	keys   []byte        // the detach keys
	client AttachStream  // set before ready is closed; nil: withdrawn
	ready  chan struct{} // closed once the client is there
	done   chan error
	once   sync.Once
}

// closedReady is the ready channel of an attach whose client is there from
// the start.
var closedReady = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// AttachFor registers an attach before its client is connected, and
// returns connect, which hands it the client and blocks as Attach does.
// The API registers before it answers the hijack: the docker CLI starts
// the container as soon as it has the answer, and a start that came
// first would run the container with nobody attached, its output lost.
// connect must be called once; with a nil client it withdraws the attach.
func (s *Containers) AttachFor(ref string, opts AttachOptions) (connect func(ctx context.Context, client AttachStream) error, err error) {
	keys, err := stream.DetachKeys(opts.DetachKeys)
	if err != nil {
		return nil, err
	}
	if opts.Logs { // the replay of logs needs the client first
		return func(ctx context.Context, client AttachStream) error {
			if client == nil {
				return nil
			}
			return s.Attach(ctx, ref, opts, client)
		}, nil
	}
	c, err := s.recs.get(ref)
	if err != nil {
		return nil, err
	}
	p := &pendingAttach{opts: opts, keys: keys, ready: make(chan struct{}), done: make(chan error, 1)}
	c.mu.Lock()
	emitAttach(s.Events, c)
	switch {
	case c.running() && c.monitorGone:
		c.mu.Unlock()
		return nil, errMonitorGone(c.ID)
	case c.running():
		connectAttach(s.recs.sockDir(c.ID), s.Events, c, p)
	case !opts.Stream:
		c.mu.Unlock()
		return func(context.Context, AttachStream) error { return nil }, nil
	case c.State.Status == container.StateCreated || c.State.Status == container.StateExited || c.State.Status == container.StateRestarting:
		c.pending = append(c.pending, p)
	default:
		c.mu.Unlock()
		return nil, errdefs.Conflictf("container %s is %s", c.ID, c.State.Status)
	}
	c.mu.Unlock()
	return func(ctx context.Context, client AttachStream) error {
		p.client = client
		close(p.ready)
		if client == nil {
			p.finish(nil)
			return nil
		}
		select {
		case err := <-p.done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil
}

func (p *pendingAttach) finish(err error) { p.once.Do(func() { p.done <- err; close(p.done) }) }

// Attach connects a client to a container's stdio and blocks until the
// output ends (the container exits) or ctx is done. Attaching to a created
// container waits for its start, so `docker run` sees all of its output.
// Output is framed as Docker frames it, raw with a TTY.
func (s *Containers) Attach(ctx context.Context, ref string, opts AttachOptions, client AttachStream) error {
	keys, err := stream.DetachKeys(opts.DetachKeys)
	if err != nil {
		return err
	}
	c, err := s.recs.get(ref)
	if err != nil {
		return err
	}
	p := &pendingAttach{opts: opts, keys: keys, client: client, ready: closedReady, done: make(chan error, 1)}
	c.mu.Lock()
	if opts.Logs {
		src := logHost{s}.source(c)
		logs.Replay(client, src)
	}
	emitAttach(s.Events, c)
	switch {
	case c.running():
		connectAttach(s.recs.sockDir(c.ID), s.Events, c, p)
	case !opts.Stream:
		c.mu.Unlock()
		return nil
	case c.State.Status == container.StateCreated || c.State.Status == container.StateExited || c.State.Status == container.StateRestarting:
		c.pending = append(c.pending, p)
	default:
		c.mu.Unlock()
		return errdefs.Conflictf("container %s is %s", c.ID, c.State.Status)
	}
	c.mu.Unlock()
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// emitAttach sends the attach event Docker sends for every attach, unless
// the container is one it cannot attach to. Callers hold c.mu.
func emitAttach(ev *Events, c *Container) {
	switch c.State.Status {
	case container.StateRemoving, container.StateDead, container.StatePaused:
		return
	}
	ev.forContainer(c, events.ActionAttach)
}

// connectAttach joins a pending attach to the running monitor. Callers hold
// c.mu.
func connectAttach(sockDir string, ev *Events, c *Container, p *pendingAttach) {
	mc, err := runtime.Attach(sockDir, shim.AttachRequest{Stdin: p.opts.Stdin, Stdout: p.opts.Stdout, Stderr: p.opts.Stderr})
	if err != nil {
		if errors.Is(err, runtime.ErrMonitorGone) && c.initProc().Alive() {
			err = errMonitorGone(c.ID)
		}
		p.finish(err)
		return
	}
	tty := c.Config.Tty
	// When the output ends because the container did, the stream closes
	// only once its exit is recorded: clients read the exit code right
	// after (lodge attach inspects), and must not see it still running.
	exited := c.exitCh
	ended := func() {
		select {
		case <-exited:
		case <-time.After(5 * time.Second): // it closed its output but runs on
		}
		p.finish(nil)
	}
	if p.opts.Stdin {
		go func() {
			if <-p.ready; p.client != nil {
				var in io.Reader = p.client
				if tty && !p.opts.NoDetachKeys {
					// Docker looks for the detach keys only with a tty;
					// without one every byte is the container's.
					in = stream.Detachable(in, p.keys)
				}
				_, err := io.Copy(mc, in)
				if stream.IsDetach(err) {
					c.mu.Lock()
					ev.forContainer(c, events.ActionDetach)
					c.mu.Unlock()
				}
				if tty {
					// With a tty, the end of the client's input (the
					// detach keys, or its terminal gone) ends its attach
					// and leaves the container running, as in Docker:
					// the monitor keeps a tty's input open.
					_ = mc.Close() // a socket: nothing buffered to lose
					return
				}
			}
			_ = mc.CloseWrite() // the monitor may be gone already: its exit ends the stream
		}()
	}
	go func() {
		defer func() { _ = mc.Close() }() // a socket: nothing buffered to lose
		if <-p.ready; p.client == nil {
			p.finish(nil) // withdrawn
			return
		}
		if !tty {
			// The monitor frames output the way Docker does: pass it on.
			if _, err := io.Copy(p.client, mc); err == nil {
				ended()
				return
			}
			p.finish(nil) // the client left
			return
		}
		buf := make([]byte, 32*1024)
		for {
			_, payload, err := shim.ReadFrame(mc, buf)
			if errors.Is(err, io.EOF) {
				ended()
				return
			}
			if err != nil {
				p.finish(nil) // the client left
				return
			}
			if len(payload) > 0 {
				if _, err := p.client.Write(payload); err != nil {
					p.finish(nil)
					return
				}
			}
		}
	}()
}

// Resize sets a running container's tty size.
func (s *Containers) Resize(ctx context.Context, ref string, height, width uint) error {
	c, err := s.recs.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running, tty := c.running(), c.Config.Tty
	c.mu.Unlock()
	if !running {
		return errdefs.Conflictf("Container %s is not running", c.ID)
	}
	if !tty {
		return nil
	}
	ctl := runtime.NewCtl(s.recs.sockDir(c.ID))
	defer ctl.Close()
	err = ctl.Resize(uint16(width), uint16(height))
	if errors.Is(err, runtime.ErrMonitorGone) {
		return errMonitorGone(c.ID)
	}
	return err
}

package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// idleStop ends the daemon once, for a whole period, no container ran and
// no API request was in progress (an open `docker events` or a pull in
// progress is a request). The next lodge command, or the next connection
// to an activated socket, starts lodged again.
type idleStop struct {
	after   time.Duration
	running func() int // containers running or paused

	mu   sync.Mutex
	busy map[net.Conn]bool
}

func newIdleStop(after time.Duration, running func() int) *idleStop {
	return &idleStop{after: after, running: running, busy: map[net.Conn]bool{}}
}

// connState is an http.Server's ConnState hook. A hijacked connection
// (attach, exec) is left out: it needs a running container, which keeps
// lodged up anyway.
func (w *idleStop) connState(c net.Conn, s http.ConnState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch s {
	case http.StateNew, http.StateActive:
		w.busy[c] = true
	default:
		delete(w.busy, c)
	}
}

func (w *idleStop) idle() bool {
	w.mu.Lock()
	n := len(w.busy)
	w.mu.Unlock()
	return n == 0 && w.running() == 0
}

// watch calls stop once lodged has been idle for w.after, and returns; or
// returns when ctx ends.
func (w *idleStop) watch(ctx context.Context, log *slog.Logger, stop func()) {
	tick := min(w.after/4, time.Second)
	since := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(tick):
		}
		if !w.idle() {
			since = time.Now()
			continue
		}
		if time.Since(since) >= w.after {
			log.Info("stopping: idle with no container running", "idle-stop", w.after)
			stop()
			return
		}
	}
}

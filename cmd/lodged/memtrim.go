package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/lodge-containers/lodge/proc"
)

// memTrim gives the daemon's free memory back to the kernel once a burst
// of API work is over. Go keeps freed heap, and sync.Pool keeps buffers
// (pgzip's 1 MiB blocks after a pull, json's encoders), for the next
// burst, and returns them only slowly: after 50 `docker run --rm` and a
// pull, the daemon idled at ~41 MiB RSS, ~22 MiB of it anonymous, with
// 16 MiB of heap in use. Once no request has been in progress for quiet,
// it runs debug.FreeOSMemory twice: the first collection moves pooled
// buffers to the pools' victim caches, the second frees them. Two full
// collections are not free, so a daemon polled every few seconds
// (compose, a dashboard) trims at most once per gap, not after each poll.
//
// After a longer rest (rest, no request at all), it also unmaps the
// daemon's code pages (proc.ReleaseCode): at rest lodged held three times
// more of its binary mapped than of heap. They stay in the page cache, and
// the next request maps back what it touches with minor faults.
type memTrim struct {
	quiet time.Duration
	gap   time.Duration // at least this between two trims
	rest  time.Duration // this long without a request: release the code pages
	log   *slog.Logger

	mu      sync.Mutex
	busy    map[net.Conn]bool
	last    time.Time // when a request last began or ended
	trimmed time.Time // when the last trim was due
	dirty   bool      // requests since the last trim
	mapped  bool      // requests since the code pages were last released

	// codeKB is how much of the binary is mapped now (RssFile), and
	// releasedKB what was left right after the last release: timers and
	// collections map pages back at rest too, and more than a MiB of
	// them goes again, at most once a rest.
	codeKB     func() int
	releasedKB int
	released   time.Time

	// wake tells watch that a request began or ended, so that at rest
	// it sleeps without a tick.
	wake chan struct{}
}

func newMemTrim(quiet, gap, rest time.Duration, log *slog.Logger) *memTrim {
	return &memTrim{quiet: quiet, gap: gap, rest: rest, log: log, busy: map[net.Conn]bool{}, last: time.Now(), mapped: true, wake: make(chan struct{}, 1)}
}

// connState is an http.Server's ConnState hook.
func (m *memTrim) connState(c net.Conn, s http.ConnState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s == http.StateActive {
		m.busy[c] = true
	} else {
		delete(m.busy, c)
	}
	m.last, m.dirty, m.mapped = time.Now(), true, true
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// resting tells whether the last trim and release were made and no
// request came since: nothing is due until one does, but the look at
// the code pages once a rest (restDue).
func (m *memTrim) resting() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.dirty && !m.mapped
}

// restDue tells whether the code pages are due for release now (the
// daemon's start counts as a request), and if so counts it as done.
func (m *memTrim) restDue(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.busy) > 0 || now.Sub(m.last) < m.rest {
		return false
	}
	if !m.mapped && (m.codeKB == nil || now.Sub(m.released) < m.rest || m.codeKB() <= m.releasedKB+1024) {
		return false
	}
	m.mapped, m.released = false, now
	return true
}

// due tells whether a trim is due now, and if so counts it as done.
func (m *memTrim) due(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirty || len(m.busy) > 0 || now.Sub(m.last) < m.quiet || now.Sub(m.trimmed) < m.gap {
		return false
	}
	m.dirty, m.trimmed = false, now
	return true
}

// watch trims whenever one is due, until ctx ends. It looks every tick
// while requests come and go; at rest, once a rest, or when the next
// request comes: a daemon nobody talks to stays asleep (it had woken every
// second for nothing, and with the other wake-ups of its idle loops kept
// the runtime collecting and mapping back the pages a release gave back).
func (m *memTrim) watch(ctx context.Context) {
	tick := min(m.quiet/2, time.Second)
	for {
		var wake chan struct{}
		wait := tick
		if m.resting() {
			wait, wake = m.rest, m.wake
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wake:
			t.Stop()
		case now := <-t.C:
			if m.due(now) {
				debug.FreeOSMemory()
				debug.FreeOSMemory()
			}
			if m.restDue(now) {
				if n, err := proc.ReleaseCode(); err != nil {
					m.log.Debug("releasing code pages", "bytes", n, "err", err)
				}
				if m.codeKB != nil {
					m.mu.Lock()
					m.releasedKB = m.codeKB()
					m.mu.Unlock()
				}
			}
		}
	}
}

package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestIdleStopAfter(t *testing.T) {
	for _, tc := range []struct {
		flag    time.Duration
		file    string
		want    time.Duration
		wantErr bool
	}{
		{0, "", 0, false},
		{0, "30m", 30 * time.Minute, false},
		{time.Minute, "30m", time.Minute, false}, // the flag wins
		{0, "soon", 0, true},
		{0, "-5s", 0, true},
		{-time.Second, "", 0, false},
	} {
		got, err := idleStopAfter(options{idleStop: tc.flag}, fileConfig{IdleStop: tc.file})
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("idleStopAfter(%v, %q) = %v, %v; want %v (error: %v)", tc.flag, tc.file, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestMemTrimAfterQuiet(t *testing.T) {
	m := newMemTrim(time.Second, time.Minute, time.Hour, slog.Default())
	t0 := time.Now()
	if m.due(t0.Add(time.Hour)) {
		t.Fatal("a trim with no request since start")
	}
	a, b := &net.TCPConn{}, &net.TCPConn{}
	m.connState(a, http.StateNew)
	m.connState(a, http.StateActive)
	m.connState(b, http.StateActive)
	m.connState(a, http.StateIdle)
	if m.due(time.Now().Add(time.Hour)) {
		t.Fatal("a trim while a request is in progress")
	}
	m.connState(b, http.StateClosed)
	if m.due(time.Now()) {
		t.Fatal("a trim before the quiet period")
	}
	if !m.due(time.Now().Add(2 * time.Second)) {
		t.Fatal("no trim after the quiet period")
	}
	if m.due(time.Now().Add(time.Hour)) {
		t.Fatal("a second trim with no request in between")
	}
	// A request after that trim: the next is due only once the gap
	// since the last has passed, however quiet it is meanwhile.
	m.connState(a, http.StateActive)
	m.connState(a, http.StateIdle)
	if !m.due(time.Now().Add(2 * time.Hour)) {
		t.Fatal("no trim a gap after the last, with a request since")
	}
	m.connState(a, http.StateActive)
	m.connState(a, http.StateIdle)
	if m.due(time.Now().Add(2*time.Hour + 10*time.Second)) {
		t.Fatal("a trim within the gap after the last one")
	}
}

func TestCodeReleasedAtRest(t *testing.T) {
	m := newMemTrim(time.Second, time.Minute, time.Minute, slog.Default())
	now := time.Now()
	if m.restDue(now.Add(time.Second)) {
		t.Fatal("code released before the first rest")
	}
	if !m.restDue(now.Add(2 * time.Minute)) {
		t.Fatal("code not released a rest after the start")
	}
	if m.restDue(now.Add(time.Hour)) {
		t.Fatal("code released twice with no request in between")
	}
	c := &net.TCPConn{}
	m.connState(c, http.StateActive)
	if m.restDue(time.Now().Add(time.Hour)) {
		t.Fatal("code released while a request is in progress")
	}
	m.connState(c, http.StateIdle)
	if m.restDue(time.Now().Add(30 * time.Second)) {
		t.Fatal("code released within the rest after a request")
	}
	if !m.restDue(time.Now().Add(2 * time.Minute)) {
		t.Fatal("code not released a rest after the last request")
	}
}

func TestCodeReleasedAgainWhenItComesBack(t *testing.T) {
	m := newMemTrim(time.Second, time.Minute, time.Minute, slog.Default())
	kb := 4000
	m.codeKB = func() int { return kb }
	now := time.Now()
	if !m.restDue(now.Add(2 * time.Minute)) {
		t.Fatal("code not released a rest after the start")
	}
	m.releasedKB = 1000 // what the release left
	kb = 1500
	if m.restDue(now.Add(4 * time.Minute)) {
		t.Fatal("released again for half a MiB come back")
	}
	kb = 3000
	if m.restDue(now.Add(2*time.Minute + 30*time.Second)) {
		t.Fatal("released twice within a rest")
	}
	if !m.restDue(now.Add(4 * time.Minute)) {
		t.Fatal("2 MiB came back at rest and stayed")
	}
}

// TestMemTrimWakesOnRequest: at rest the watch sleeps without a tick, and
// a request wakes it: the trim after it comes a quiet period later, not
// at the end of the rest.
func TestMemTrimWakesOnRequest(t *testing.T) {
	m := newMemTrim(50*time.Millisecond, 0, 3*time.Second, slog.Default())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.watch(ctx)
	waitUntil := func(what string, within time.Duration, cond func() bool) time.Duration {
		t.Helper()
		t0 := time.Now()
		for !cond() {
			if time.Since(t0) > within {
				t.Fatalf("%s: not within %v", what, within)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return time.Since(t0)
	}
	waitUntil("at rest after the start", 10*time.Second, m.resting)
	c := &net.TCPConn{}
	m.connState(c, http.StateActive)
	m.connState(c, http.StateIdle)
	waitUntil("the trim after a request at rest", 2*time.Second, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return !m.dirty
	})
}

func TestNoNewPrivileges(t *testing.T) {
	off, on := false, true
	for _, tc := range []struct {
		flag, set bool
		file      *bool
		want      bool
	}{
		{true, false, nil, true},   // neither: on
		{true, false, &off, false}, // daemon.json turns it off
		{false, true, &on, false},  // the flag wins over daemon.json
		{true, true, &off, true},
	} {
		if got := noNewPrivileges(options{noNewPrivs: tc.flag, noNewPrivsSet: tc.set}, fileConfig{NoNewPrivileges: tc.file}); got != tc.want {
			t.Errorf("flag %v (given %v), file %v: %v, want %v", tc.flag, tc.set, tc.file, got, tc.want)
		}
	}
}

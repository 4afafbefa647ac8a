package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWatchCreates: a socket made in the directory is told, and the
// watch ends (its channel closed) with the directory or the context.
func TestWatchCreates(t *testing.T) {
	recv := func(ch chan struct{}, what string) bool {
		t.Helper()
		select {
		case _, ok := <-ch:
			return ok
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: nothing told within 10s", what)
			return false
		}
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := watchCreates(ctx, dir)
	if ch == nil {
		t.Fatal("no inotify watch")
	}
	l, err := net.Listen("unix", filepath.Join(dir, "api.sock"))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if !recv(ch, "a socket made") {
		t.Fatal("the watch ended at a socket made")
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for recv(ch, "the directory removed") {
	}

	dir2 := t.TempDir()
	ctx2, cancel2 := context.WithCancel(context.Background())
	ch = watchCreates(ctx2, dir2)
	cancel2()
	for recv(ch, "the context ended") {
	}
}

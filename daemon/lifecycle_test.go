package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/shim"
)

// TestWaitReportsTheRunThatEnded: a wait that was waiting when the
// container exited reports that exit, even when the next run (a restart,
// by hand or by policy) has begun before the waiter reads it.
func TestWaitReportsTheRunThatEnded(t *testing.T) {
	root := t.TempDir()
	s := assemble(context.Background(), ContainersConfig{Root: root, Rootfs: nopRootfs{}, Log: slog.New(slog.DiscardHandler)})
	c := &Container{ID: "eeeeeeeeeeeeeeee", Name: "ww", Config: &container.Config{}, HostConfig: &container.HostConfig{},
		State: ContainerState{Status: container.StateRunning}, exitCh: make(chan struct{}), removedCh: make(chan struct{})}
	s.recs.add(c)
	os.MkdirAll(filepath.Join(root, c.ID), 0o700)
	for _, cond := range []container.WaitCondition{container.WaitConditionNotRunning, container.WaitConditionNextExit} {
		t.Run(string(cond), func(t *testing.T) {
			wait, err := s.lifecycle.WaitFor("ww", cond)
			if err != nil {
				t.Fatal(err)
			}
			s.lifecycle.recordExit(c, shim.ExitStatus{ExitCode: 137, Error: "killed", FinishedAt: time.Now()})
			// The next run starts before the waiter gets to read.
			c.mu.Lock()
			c.State = ContainerState{Status: container.StateRunning, Pid: 42, StartedAt: time.Now()}
			c.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 137 || resp.Error == nil || resp.Error.Message != "killed" {
				t.Errorf("wait answered %d %+v, want 137 killed", resp.StatusCode, resp.Error)
			}
		})
	}
	// Not running: the last exit at once.
	c.mu.Lock()
	c.State = ContainerState{Status: container.StateExited, ExitCode: 3}
	c.mu.Unlock()
	wait, err := s.lifecycle.WaitFor("ww", container.WaitConditionNotRunning)
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := wait(context.Background()); resp.StatusCode != 3 {
		t.Errorf("wait on a stopped container: %d, want 3", resp.StatusCode)
	}
}

package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/shim"
)

// TestRemoveDropsExecs: `docker rm` takes the container's execs with it
// (they used to stay in lodged's memory for its whole life), and the
// container's exit drops those never started.
func TestRemoveDropsExecs(t *testing.T) {
	root := t.TempDir()
	s := assemble(context.Background(), ContainersConfig{Root: root, RunDir: t.TempDir(), Rootfs: nopRootfs{}, Events: NewEvents(), Log: slog.New(slog.DiscardHandler)})
	c := &Container{ID: "cccccccccccccccccccc", Name: "ex", Config: &container.Config{}, HostConfig: &container.HostConfig{},
		State: ContainerState{Status: container.StateRunning}, exitCh: make(chan struct{}), removedCh: make(chan struct{})}
	s.recs.add(c)
	if err := os.MkdirAll(filepath.Join(root, c.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	req := container.ExecCreateRequest{Cmd: []string{"true"}}
	ids := make([]string, 2)
	for i := range ids {
		id, err := s.execs.ExecCreate(context.Background(), "ex", req)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	s.lifecycle.recordExit(c, shim.ExitStatus{})
	if _, err := s.execs.ExecInspect(ids[0]); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("an exec never started outlived its container's exit: %v", err)
	}
	c.mu.Lock()
	c.State.Status = container.StateRunning
	c.mu.Unlock()
	id, err := s.execs.ExecCreate(context.Background(), "ex", req)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.State.Status = container.StateExited
	c.mu.Unlock()
	if err := s.Remove(context.Background(), "ex", RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.execs.ExecInspect(id); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("exec of a removed container: inspect says %v, want not found", err)
	}
	if n := s.execs.Len(); n != 0 {
		t.Errorf("lodged keeps %d execs of a removed container", n)
	}
}

// TestExecAdmit: an exec needs a running, unpaused container, a command
// and a clean environment, with Docker's messages.
func TestExecAdmit(t *testing.T) {
	s := assemble(context.Background(), ContainersConfig{})
	for _, st := range []container.ContainerState{container.StateRunning, container.StatePaused, container.StateExited} {
		c := &Container{ID: string(st) + "0000000000000", Name: string(st), Config: &container.Config{}, HostConfig: &container.HostConfig{},
			State: ContainerState{Status: st}}
		s.recs.add(c)
	}
	h := execHost{s}
	for _, tc := range []struct {
		ref  string
		req  container.ExecCreateRequest
		want error
	}{
		{"running", container.ExecCreateRequest{Cmd: []string{"true"}}, nil},
		{"paused", container.ExecCreateRequest{Cmd: []string{"true"}}, errdefs.ErrConflict},
		{"exited", container.ExecCreateRequest{Cmd: []string{"true"}}, errdefs.ErrConflict},
		{"nosuch", container.ExecCreateRequest{Cmd: []string{"true"}}, errdefs.ErrNotFound},
		{"running", container.ExecCreateRequest{}, errdefs.ErrInvalidArgument},
		{"running", container.ExecCreateRequest{Cmd: []string{"true"}, Env: []string{"=x"}}, errdefs.ErrInvalidArgument},
	} {
		_, err := h.Admit(tc.ref, tc.req)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s %+v: %v, want %v", tc.ref, tc.req, err, tc.want)
		}
	}
}

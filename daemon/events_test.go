package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lodge-containers/lodge/runtime"
)

// collect watches ev until the filter's Until and returns what came.
func collect(t *testing.T, ev *Events, f EventFilter) []events.Message {
	t.Helper()
	var got []events.Message
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ev.Watch(ctx, f, func(m events.Message) error { got = append(got, m); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestEventsWatch(t *testing.T) {
	ev := NewEvents()
	ev.Publish(events.ContainerEventType, events.ActionStart, "aaaaaaaaaaaaaaaa", map[string]string{"name": "one"})
	ev.Publish(events.ContainerEventType, events.ActionPause, "bbbbbbbbbbbbbbbb", map[string]string{"name": "two"})
	ev.Publish(events.ImageEventType, events.ActionPull, "busybox", nil)
	now := time.Now()
	for _, tc := range []struct {
		name string
		f    EventFilter
		want int
	}{
		{"all past", EventFilter{Until: now}, 3},
		{"by type", EventFilter{Types: []string{"container"}, Until: now}, 2},
		{"by action", EventFilter{Actions: []string{"pause"}, Until: now}, 1},
		{"by name", EventFilter{Objects: []string{"one"}, Until: now}, 1},
		{"by ID prefix", EventFilter{Objects: []string{"bbbbbbbbbbbb"}, Until: now}, 1},
		{"since later", EventFilter{Since: now.Add(time.Second), Until: now.Add(100 * time.Millisecond)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := collect(t, ev, tc.f); len(got) != tc.want {
				t.Errorf("got %d events %+v, want %d", len(got), got, tc.want)
			}
		})
	}
	// A new event reaches a watcher that is waiting.
	go func() {
		time.Sleep(50 * time.Millisecond)
		ev.Publish(events.ContainerEventType, events.ActionOOM, "cccccccccccccccc", nil)
	}()
	got := collect(t, ev, EventFilter{Actions: []string{"oom"}, Until: time.Now().Add(2 * time.Second)})
	if len(got) != 1 || got[0].Actor.ID != "cccccccccccccccc" {
		t.Errorf("live event: %+v", got)
	}
}

type nopRootfs struct{}

func (nopRootfs) CreateRootfs(string, string, []specs.LinuxIDMapping, []specs.LinuxIDMapping) error {
	return nil
}
func (nopRootfs) Mount(string) (string, error) { return "", nil }
func (nopRootfs) Unmount(string) error         { return nil }
func (nopRootfs) RemoveRootfs(string) error    { return nil }

// TestOOMExit: an exit the monitor saw OOM-killed is recorded as
// OOMKilled and announced with an oom event before the die.
func TestOOMExit(t *testing.T) {
	root := t.TempDir()
	ev := NewEvents()
	s := &Containers{ContainersConfig: ContainersConfig{Rootfs: nopRootfs{}, Events: ev, Log: slog.New(slog.DiscardHandler)}, root: root}
	c := &Container{ID: "dddddddddddddddd", Name: "hog", Config: &container.Config{}, HostConfig: &container.HostConfig{},
		State: ContainerState{Status: container.StateRunning}, exitCh: make(chan struct{})}
	os.MkdirAll(filepath.Join(root, c.ID), 0o700)
	s.recordExit(c, runtime.ExitStatus{ExitCode: 137, OOMKilled: true, FinishedAt: time.Now()})
	if !c.State.OOMKilled || c.State.ExitCode != 137 {
		t.Errorf("state %+v", c.State)
	}
	got := collect(t, ev, EventFilter{Until: time.Now()})
	if len(got) != 2 || got[0].Action != events.ActionOOM || got[1].Action != events.ActionDie || got[1].Actor.Attributes["exitCode"] != "137" {
		t.Errorf("events %+v", got)
	}
	inspect, err := os.ReadFile(filepath.Join(root, c.ID, "container.json"))
	if err != nil || !strings.Contains(string(inspect), `"OOMKilled": true`) {
		t.Errorf("saved record: %v %s", err, inspect)
	}
}

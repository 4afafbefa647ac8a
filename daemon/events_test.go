package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lodge-containers/lodge/shim"
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
	proj := map[string]string{"name": "one", "image": "busybox:1.36", "com.docker.compose.project": "p", "com.docker.compose.service": "web"}
	ev.Publish(events.ContainerEventType, events.ActionStart, "aaaaaaaaaaaaaaaa", proj)
	ev.Publish(events.ContainerEventType, events.ActionPause, "bbbbbbbbbbbbbbbb", map[string]string{"name": "two", "image": "sha256:feed"})
	ev.Publish(events.ImageEventType, events.ActionPull, "busybox", nil)
	ev.Publish(events.NetworkEventType, events.ActionConnect, "nnnnnnnnnnnnnnnn", map[string]string{"name": "p_default", "container": "aaaaaaaaaaaaaaaa"})
	ev.Publish(events.VolumeEventType, events.ActionCreate, "p_data", map[string]string{"driver": "local"})
	ev.Publish(events.ContainerEventType, events.Action("health_status: healthy"), "aaaaaaaaaaaaaaaa", proj)
	now := time.Now()
	for _, tc := range []struct {
		name string
		f    EventFilter
		want int
	}{
		{"all past", EventFilter{Until: now}, 6},
		{"by type", EventFilter{Types: []string{"container"}, Until: now}, 3},
		{"by action", EventFilter{Actions: []string{"pause"}, Until: now}, 1},
		{"health_status with its detail", EventFilter{Actions: []string{"health_status"}, Until: now}, 1},
		{"no prefix match for other actions", EventFilter{Actions: []string{"sta"}, Until: now}, 0},
		{"by name", EventFilter{Objects: map[string][]string{"container": {"one"}}, Until: now}, 2},
		{"by ID prefix", EventFilter{Objects: map[string][]string{"container": {"bbbbbbbbbbbb"}}, Until: now}, 1},
		{"short prefix is no match", EventFilter{Objects: map[string][]string{"container": {"bbb"}}, Until: now}, 0},
		{"network by name", EventFilter{Objects: map[string][]string{"network": {"p_default"}}, Until: now}, 1},
		{"volume", EventFilter{Objects: map[string][]string{"volume": {"p_data"}}, Until: now}, 1},
		{"keys all hold", EventFilter{Objects: map[string][]string{"container": {"one"}, "network": {"p_default"}}, Until: now}, 0},
		{"daemon", EventFilter{Objects: map[string][]string{"daemon": {"nothing"}}, Until: now}, 0},
		{"label key=value", EventFilter{Labels: []string{"com.docker.compose.project=p"}, Until: now}, 2},
		{"labels all hold", EventFilter{Labels: []string{"com.docker.compose.project=p", "com.docker.compose.service=db"}, Until: now}, 0},
		{"label key only", EventFilter{Labels: []string{"com.docker.compose.service"}, Until: now}, 2},
		{"image of a container, tag dropped", EventFilter{Images: []string{"busybox"}, Until: now}, 3},
		{"image with its tag", EventFilter{Images: []string{"busybox:1.36"}, Until: now}, 2},
		{"image by ID", EventFilter{Images: []string{"sha256:feed"}, Until: now}, 1},
		{"ID keeps its algorithm", EventFilter{Images: []string{"sha256"}, Until: now}, 0},
		{"scope", EventFilter{Scopes: []string{"swarm"}, Until: now}, 0},
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

// TestEventsKeptAsDocker: --since sees the last 256 events, Docker
// Engine's history, the newest of them last.
func TestEventsKeptAsDocker(t *testing.T) {
	ev := NewEvents()
	for i := range 300 {
		ev.Publish(events.ContainerEventType, events.ActionCreate, fmt.Sprintf("%016d", i), nil)
	}
	got := collect(t, ev, EventFilter{Until: time.Now()})
	if len(got) != 256 {
		t.Fatalf("kept %d events, want 256", len(got))
	}
	if first, last := got[0].Actor.ID, got[255].Actor.ID; first != fmt.Sprintf("%016d", 44) || last != fmt.Sprintf("%016d", 299) {
		t.Fatalf("kept %q to %q, want the newest: 44 to 299", first, last)
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
	s := assemble(context.Background(), ContainersConfig{Root: root, Rootfs: nopRootfs{}, Events: ev, Log: slog.New(slog.DiscardHandler)})
	c := &Container{ID: "dddddddddddddddd", Name: "hog", Config: &container.Config{}, HostConfig: &container.HostConfig{},
		State: ContainerState{Status: container.StateRunning}, exitCh: make(chan struct{})}
	os.MkdirAll(filepath.Join(root, c.ID), 0o700)
	s.lifecycle.recordExit(c, shim.ExitStatus{ExitCode: 137, OOMKilled: true, FinishedAt: time.Now()})
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

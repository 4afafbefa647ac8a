package exec

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/runtime"
)

// fakeContainers runs every container it knows; the rest are not found.
type fakeContainers struct {
	known  map[string]bool
	events []string
}

func (f *fakeContainers) Admit(ref string, req container.ExecCreateRequest) (string, error) {
	if !f.known[ref] {
		return "", errdefs.NotFoundf("No such container: %s", ref)
	}
	return ref, nil
}

func (f *fakeContainers) Process(id string, req container.ExecCreateRequest) (runtime.ExecSpec, error) {
	return runtime.ExecSpec{}, errors.New("the fake runs nothing")
}

var _ Containers = (*fakeContainers)(nil)

func (f *fakeContainers) Joined(string, int) {}

func (f *fakeContainers) Emit(id string, a events.Action, attrs ...string) {
	f.events = append(f.events, id+" "+string(a))
}

func create(t *testing.T, s *Service, ctr string) string {
	t.Helper()
	id, err := s.ExecCreate(context.Background(), ctr, container.ExecCreateRequest{Cmd: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestRemovedContainersExecsGo: a removed container takes every exec of
// its own with it, ended or not, and leaves the other containers' alone.
func TestRemovedContainersExecsGo(t *testing.T) {
	f := &fakeContainers{known: map[string]bool{"c1": true, "c2": true}}
	s := New(t.TempDir(), f)
	a, b, other := create(t, s, "c1"), create(t, s, "c1"), create(t, s, "c2")
	s.Removed("c1")
	for _, id := range []string{a, b} {
		if _, err := s.ExecInspect(id); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("exec %s of the removed container: inspect says %v, want not found", id[:12], err)
		}
	}
	if _, err := s.ExecInspect(other); err != nil {
		t.Errorf("the other container's exec: %v", err)
	}
	if n := s.Len(); n != 1 {
		t.Errorf("the table keeps %d execs, want 1", n)
	}
}

// TestExitedContainersUnstartedExecsGo: an exec created but never started
// can never run once its container has exited; one that ran stays
// inspectable until it is Keep old.
func TestExitedContainersUnstartedExecsGo(t *testing.T) {
	f := &fakeContainers{known: map[string]bool{"c1": true}}
	s := New(t.TempDir(), f)
	unstarted, ran := create(t, s, "c1"), create(t, s, "c1")
	code := 0
	e := s.byContainer["c1"][ran]
	e.started, e.exitCode, e.ended = true, &code, time.Now()
	s.Exited("c1")
	if _, err := s.ExecInspect(unstarted); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unstarted exec after the exit: %v, want not found", err)
	}
	insp, err := s.ExecInspect(ran)
	if err != nil || insp.ExitCode == nil || *insp.ExitCode != 0 {
		t.Errorf("ended exec after the exit: %+v %v, want exit code 0", insp, err)
	}
}

// TestEndedExecsAgeOut: an exec that ended more than Keep ago is dropped
// at the next create; running and recent ones stay.
func TestEndedExecsAgeOut(t *testing.T) {
	f := &fakeContainers{known: map[string]bool{"c1": true, "c2": true}}
	s := New(t.TempDir(), f)
	old, recent, running := create(t, s, "c1"), create(t, s, "c2"), create(t, s, "c1")
	s.byContainer["c1"][old].ended = time.Now().Add(-Keep - time.Minute)
	s.byContainer["c2"][recent].ended = time.Now()
	s.byContainer["c1"][running].started, s.byContainer["c1"][running].running = true, true
	create(t, s, "c2")
	if _, err := s.ExecInspect(old); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("old exec: %v, want not found", err)
	}
	for _, id := range []string{recent, running} {
		if _, err := s.ExecInspect(id); err != nil {
			t.Errorf("exec %s: %v", id[:12], err)
		}
	}
}

// TestCreateChecks: the container's refusal comes first; then Docker's
// message for bad detach keys. The create event carries the command.
func TestCreateChecks(t *testing.T) {
	f := &fakeContainers{known: map[string]bool{"c1": true}}
	s := New(t.TempDir(), f)
	if _, err := s.ExecCreate(context.Background(), "gone", container.ExecCreateRequest{Cmd: []string{"true"}}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown container: %v", err)
	}
	_, err := s.ExecCreate(context.Background(), "c1", container.ExecCreateRequest{Cmd: []string{"true"}, DetachKeys: "shift-a"})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || err.Error() != "Invalid escape keys (shift-a) provided" {
		t.Errorf("bad detach keys: %v", err)
	}
	create(t, s, "c1")
	if len(f.events) != 1 || f.events[0] != "c1 exec_create: true" {
		t.Errorf("events: %q", f.events)
	}
}

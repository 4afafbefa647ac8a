package daemon

import (
	"testing"
	"time"
)

func TestExecsAreDropped(t *testing.T) {
	s := &Containers{}
	s.execs.m = map[string]*Exec{
		"old":     {ContainerID: "c1", ended: time.Now().Add(-10 * time.Minute)},
		"running": {ContainerID: "c1"},
		"recent":  {ContainerID: "c2", ended: time.Now()},
	}
	s.execs.mu.Lock()
	s.dropEndedExecsLocked(time.Now().Add(-execKeep))
	s.execs.mu.Unlock()
	if _, ok := s.execs.m["old"]; ok || s.execCount() != 2 {
		t.Fatalf("after the age cut: %v", s.execs.m)
	}
	s.dropExecs("c1")
	if _, ok := s.execs.m["recent"]; !ok || s.execCount() != 1 {
		t.Fatalf("after c1's removal: %v", s.execs.m)
	}
}

package tests

import (
	"strings"
	"testing"
	"time"
)

// TestPruneFilters: container and network prune remove only what their
// filters select (until, label, label!), as Docker does, and refuse a
// filter they do not take without removing anything.
func TestPruneFilters(t *testing.T) {
	s, docker := compatSession(t)
	names := func(args ...string) string {
		return strings.Join(strings.Fields(s.must(docker, args...).stdout), " ")
	}
	s.must(docker, "create", "--name", "old", "busybox")
	time.Sleep(1100 * time.Millisecond)
	cut := time.Now().UTC().Format(time.RFC3339Nano)
	time.Sleep(1100 * time.Millisecond)
	s.must(docker, "create", "--name", "new", "--label", "keep=yes", "busybox")
	s.must(docker, "create", "--name", "newer", "busybox")

	if r := s.run(docker, "container", "prune", "-f", "--filter", "colour=red"); r.code == 0 || !strings.Contains(r.stderr, "invalid filter") {
		t.Errorf("container prune with a filter it does not take: %s", r)
	}
	if got := names("ps", "-a", "--format", "{{.Names}}"); got != "newer new old" {
		t.Fatalf("containers after a refused prune: %q", got)
	}
	s.must(docker, "container", "prune", "-f", "--filter", "until="+cut)
	if got := names("ps", "-a", "--format", "{{.Names}}"); got != "newer new" {
		t.Errorf("containers after prune --filter until=%s: %q, want old gone", cut, got)
	}
	s.must(docker, "container", "prune", "-f", "--filter", "label!=keep=yes")
	if got := names("ps", "-a", "--format", "{{.Names}}"); got != "new" {
		t.Errorf("containers after prune --filter label!=keep=yes: %q, want new alone", got)
	}
	s.must(docker, "container", "prune", "-f", "--filter", "label=keep=no")
	if got := names("ps", "-a", "--format", "{{.Names}}"); got != "new" {
		t.Errorf("containers after prune --filter label=keep=no: %q, want new kept", got)
	}

	s.must(docker, "network", "create", "--label", "env=test", "tnet")
	s.must(docker, "network", "create", "pnet")
	if r := s.run(docker, "network", "prune", "-f", "--filter", "dangling=true"); r.code == 0 || !strings.Contains(r.stderr, "invalid filter") {
		t.Errorf("network prune with a filter it does not take: %s", r)
	}
	s.must(docker, "network", "prune", "-f", "--filter", "label=env=test")
	got := names("network", "ls", "--format", "{{.Name}}")
	if strings.Contains(got, "tnet") || !strings.Contains(got, "pnet") {
		t.Errorf("networks after prune --filter label=env=test: %q, want tnet gone and pnet kept", got)
	}
	s.must(docker, "network", "prune", "-f", "--filter", "until=2000-01-01")
	if got := names("network", "ls", "--format", "{{.Name}}"); !strings.Contains(got, "pnet") {
		t.Errorf("networks after prune --filter until=2000-01-01: %q, want pnet kept", got)
	}
	s.must(docker, "network", "prune", "-f")
	if got := names("network", "ls", "--format", "{{.Name}}"); strings.Contains(got, "pnet") {
		t.Errorf("networks after prune: %q", got)
	}
	s.must(docker, "rm", "new")
}

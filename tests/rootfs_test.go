package tests

import (
	"strings"
	"testing"
)

// A --rm container's root filesystem is mounted volatile with native
// overlay (its unmount does not sync the whole disk, and nothing it wrote
// outlives it); a container that stays keeps the durable mount, so an
// fsync inside it reaches the disk as under Docker.
func TestRemovedContainerRootVolatile(t *testing.T) {
	s, docker := containerSession(t)
	driver := strings.TrimSpace(s.must(docker, "info", "--format", "{{.Driver}}").stdout)
	// The root's mount, as the container sees it: "... / / ... - overlay overlay OPTIONS".
	rootOpts := func(args ...string) string {
		out := s.must(docker, append(args, "busybox", "busybox", "cat", "/proc/self/mountinfo")...).stdout
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 4 && f[3] == "/" && f[4] == "/" {
				_, after, _ := strings.Cut(line, " - ")
				return after
			}
		}
		t.Fatalf("no root mount in the container's mountinfo:\n%s", out)
		return ""
	}
	volatile := func(opts string) bool {
		return strings.Contains(opts, ",volatile") || strings.Contains(opts, "fsync=volatile")
	}
	rm := rootOpts("run", "--rm")
	kept := rootOpts("run", "--name", "kept")
	t.Logf("driver %s; --rm: %s; kept: %s", driver, rm, kept)
	if volatile(kept) {
		t.Errorf("a container that stays is mounted volatile: %s", kept)
	}
	if want := driver == "overlay"; volatile(rm) != want {
		t.Errorf("driver %s: a --rm container's root volatile %v, want %v: %s", driver, volatile(rm), want, rm)
	}
	s.must(docker, "rm", "kept")
}

package cgroupfs

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestReadKeyed: a flat-keyed file reads as its numbers; a line that is
// not "key number" is skipped.
func TestReadKeyed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "memory.events")
	if err := os.WriteFile(p, []byte("low 0\nmax 12\nbogus\noom_kill 3"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := ReadKeyed(p)
	if err != nil || len(m) != 3 || m["max"] != 12 || m["oom_kill"] != 3 {
		t.Fatalf("ReadKeyed = %v, %v", m, err)
	}
	if OOMKills(filepath.Dir(p)) != 3 || OOMKills(t.TempDir()) != 0 {
		t.Error("OOMKills")
	}
}

// TestGone: killing and removing a cgroup that is already gone is no
// error (a container's shim and the daemon both end it).
func TestGone(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "gone")
	if err := Kill(ctx, dir); err != nil {
		t.Errorf("Kill: %v", err)
	}
	if err := Remove(ctx, dir); err != nil {
		t.Errorf("Remove: %v", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Remove(ctx, dir); err != nil || Exists(dir) {
		t.Errorf("Remove of an empty cgroup: %v, still there: %v", err, Exists(dir))
	}
}

package cgroupv2

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fakeTree makes a cgroupfs-shaped tree; v2 marks the directory that stands
// for the cgroup2 mount.
func fakeTree(t *testing.T, v2 string, own string, controllers string) (root, procSelf string) {
	t.Helper()
	root = t.TempDir()
	if v2 != "" {
		dir := filepath.Join(root, v2, own)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(root, v2, ".cgroup2"), nil, 0o644)
		os.WriteFile(filepath.Join(dir, "cgroup.controllers"), []byte(controllers+"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "cgroup.procs"), nil, 0o644)
	}
	procSelf = filepath.Join(t.TempDir(), "cgroup")
	os.WriteFile(procSelf, []byte("4:memory:/x\n0::"+own+"\n"), 0o644)
	return root, procSelf
}

func TestDetect(t *testing.T) {
	old := isCgroup2
	isCgroup2 = func(p string) bool { _, err := os.Stat(filepath.Join(p, ".cgroup2")); return err == nil }
	t.Cleanup(func() { isCgroup2 = old })

	t.Run("unified with controllers", func(t *testing.T) {
		root, ps := fakeTree(t, ".", "/user.slice/u", "cpu memory pids")
		s, err := Detect(root, ps)
		if err != nil {
			t.Fatal(err)
		}
		if s.Layout != Unified || s.Own != "/user.slice/u" || !reflect.DeepEqual(s.Controllers, []string{"cpu", "memory", "pids"}) {
			t.Fatalf("got %+v", s)
		}
		if os.Getuid() != 0 && !s.Writable {
			t.Error("own writable tree not writable")
		}
		if !s.Has("memory") || s.Has("io") {
			t.Error("Has is wrong")
		}
	})
	t.Run("hybrid without controllers", func(t *testing.T) {
		root, ps := fakeTree(t, "unified", "/lodge", "")
		s, err := Detect(root, ps)
		if err != nil {
			t.Fatal(err)
		}
		if s.Layout != Hybrid || s.V2Root != filepath.Join(root, "unified") || len(s.Controllers) != 0 {
			t.Fatalf("got %+v", s)
		}
		if s.Delegated() {
			t.Error("delegated with no controllers")
		}
		if s.Version() != "2" {
			t.Errorf("version %s", s.Version())
		}
	})
	t.Run("legacy", func(t *testing.T) {
		root, ps := fakeTree(t, "", "/", "")
		s, err := Detect(root, ps)
		if err != nil {
			t.Fatal(err)
		}
		if s.Layout != Legacy || s.Version() != "1" {
			t.Fatalf("got %+v", s)
		}
	})
}

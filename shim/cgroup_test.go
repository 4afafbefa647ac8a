package shim

import (
	"os"
	"path/filepath"
	"testing"
)

// TestEndCgroupOOM: a container whose cgroup saw an OOM kill ends with
// OOMKilled, read from memory.events (a fake tree: this machine's v2
// hierarchy has no memory controller).
func TestEndCgroupOOM(t *testing.T) {
	for _, tc := range []struct {
		events string
		want   bool
	}{
		{"low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n", true},
		{"low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n", false},
		{"", false}, // no memory controller: no memory.events
	} {
		dir := filepath.Join(t.TempDir(), "c")
		os.Mkdir(dir, 0o755)
		if tc.events != "" {
			os.WriteFile(filepath.Join(dir, "memory.events"), []byte(tc.events), 0o644)
		}
		var st ExitStatus
		EndCgroup(dir, &st)
		if st.OOMKilled != tc.want {
			t.Errorf("memory.events %q: OOMKilled = %v", tc.events, st.OOMKilled)
		}
	}
}

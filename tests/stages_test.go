package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStagesRunFromLodgeKeeper checks that lodged's stages that only hold
// namespaces, pipes and the uplink run from lodge-keeper, and the API
// daemon from lodged (issue 20): they live as long as lodged does, and as
// lodged each carried its image store, registry client and libcontainer,
// ~19 MiB resident apiece. Read from /proc/PID/exe, so that a stage
// quietly started from lodged again fails here. The pin comes with the
// first container and goes after the last.
func TestStagesRunFromLodgeKeeper(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "run", "-d", "--name", "holder", "busybox", "sleep", "600")
	daemon := s.pid()
	waitFor(t, 10*time.Second, func() bool { return s.pidFile("pin.pid") > 0 })
	stages := []struct {
		name string
		pid  int
		exe  string
	}{
		{"keeper's host side (rootlesskit's parent)", s.pidFile("keeper.pid"), "lodge-keeper"},
		{"rootlesskit's child", s.childPID(), "lodge-keeper"},
		{"keeper", parentOf(daemon), "lodge-keeper"},
		{"pin", s.pidFile("pin.pid"), "lodge-keeper"},
		{"API daemon", daemon, "lodged"},
	}
	for _, st := range stages {
		if st.pid <= 1 {
			t.Errorf("%s: no pid", st.name)
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", st.pid))
		if err != nil {
			t.Errorf("%s (pid %d): %v", st.name, st.pid, err)
			continue
		}
		if filepath.Base(exe) != st.exe || filepath.Dir(exe) != binDir {
			t.Errorf("%s (pid %d) runs %s, want %s", st.name, st.pid, exe, filepath.Join(binDir, st.exe))
		}
	}
	// With no container left, the pin goes within seconds: the daemon
	// tells the keeper, which wakes it (it looks by itself only every
	// 30 s).
	pin := s.pidFile("pin.pid")
	s.must(docker, "rm", "-f", "holder")
	waitGone(t, []int{pin}, 10*time.Second)
}

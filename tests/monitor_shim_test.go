package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodge-containers/lodge/proc"
)

// TestMonitorIsShim: what stays beside a running container is lodge-shim,
// the small binary without libcontainer (issue 20), not lodge-monitor,
// which created the container and then became it; and through it the
// container still logs, takes stdin from an attach, is signalled, and
// reports its exit code, with and without a tty.
func TestMonitorIsShim(t *testing.T) {
	s, docker := containerSession(t)

	s.must(docker, "run", "-d", "-i", "--name", "pipes", "busybox", "sh", "-c", `echo first; read line; echo "got $line"; exit 3`)
	s.must(docker, "run", "-d", "-t", "--name", "tty", "busybox", "sh", "-c", "echo on-tty; exec sleep 1000")
	for _, name := range []string{"pipes", "tty"} {
		pid, _ := strconv.Atoi(strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.State.Pid}}", name).stdout))
		st, err := proc.ReadStat(pid)
		if err != nil {
			t.Fatalf("%s: init %d: %v", name, pid, err)
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", st.PPID))
		if err != nil || filepath.Base(exe) != "lodge-shim" {
			t.Errorf("%s: the init's parent %d runs %q (%v), want lodge-shim", name, st.PPID, exe, err)
		}
		// Nothing of the creating binary is left mapped in it.
		maps, _ := os.ReadFile(fmt.Sprintf("/proc/%d/maps", st.PPID))
		if strings.Contains(string(maps), "lodge-monitor") {
			t.Errorf("%s: monitor %d still maps lodge-monitor", name, st.PPID)
		}
	}

	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(s.run(docker, "logs", "pipes").stdout, "first")
	})
	cmd := s.command(t.Context(), docker, "attach", "pipes")
	cmd.Stdin = strings.NewReader("hello\n")
	out, err := cmd.Output()
	if !strings.Contains(string(out), "got hello") {
		t.Errorf("attach with stdin: %q, %v", out, err)
	}
	if r := s.must(docker, "wait", "pipes"); strings.TrimSpace(r.stdout) != "3" {
		t.Errorf("docker wait: %q, want 3", r.stdout)
	}
	if r := s.must(docker, "logs", "pipes"); r.stdout != "first\ngot hello\n" {
		t.Errorf("docker logs: %q", r.stdout)
	}

	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(s.run(docker, "logs", "tty").stdout, "on-tty")
	})
	s.must(docker, "kill", "tty")
	if r := s.must(docker, "wait", "tty"); strings.TrimSpace(r.stdout) != "137" {
		t.Errorf("docker wait after kill: %q, want 137", r.stdout)
	}
}

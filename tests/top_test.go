package tests

import (
	"strings"
	"testing"
)

// TestTopPSArgs: docker top lists the container's processes with ps's
// columns, -ef's by default and those of the ps options given, as
// Docker does; ps's refusal of an option is the error.
func TestTopPSArgs(t *testing.T) {
	s, docker := compatSession(t)
	s.must(docker, "run", "-d", "--name", "topped", "busybox", "sh", "-c", "sleep 600 & exec sleep 700")
	lines := func(args ...string) []string {
		return strings.Split(strings.TrimSpace(s.must(docker, append([]string{"top", "topped"}, args...)...).stdout), "\n")
	}
	def := lines()
	if f := strings.Fields(def[0]); strings.Join(f, " ") != "UID PID PPID C STIME TTY TIME CMD" || len(def) != 3 {
		t.Errorf("docker top: %q", def)
	} else if !strings.Contains(def[1]+def[2], "sleep 600") || !strings.Contains(def[1]+def[2], "sleep 700") || strings.Fields(def[1])[4] == "-" {
		t.Errorf("docker top rows (ps's, with their start time): %q", def[1:])
	}
	if got := lines("-o", "pid,comm"); len(got) != 3 || strings.Join(strings.Fields(got[0]), " ") != "PID COMMAND" || !strings.HasSuffix(got[1], "sleep") {
		t.Errorf("docker top -o pid,comm: %q", got)
	}
	if got := lines("aux"); len(got) != 3 || !strings.HasPrefix(got[0], "USER") || !strings.Contains(got[0], "%CPU") {
		t.Errorf("docker top aux: %q", got)
	}
	if r := s.run(docker, "top", "topped", "--no-such-option"); r.code == 0 || r.stderr == "" {
		t.Errorf("docker top with an option ps refuses: %s", r)
	}
	s.must(docker, "rm", "-f", "topped")
}

package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestLifecycleLikeDocker: the lifecycle rules clients rely on, as Docker
// Engine 28 keeps them.
func TestLifecycleLikeDocker(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	docker := needDocker(t)
	s := newSession(t, u)
	s.start()
	s.loadBusybox(docker)

	// kill -s KILL returns once the container has exited.
	s.must(docker, "run", "-d", "--name", "kk", "busybox", "sleep", "300")
	s.must(docker, "kill", "-s", "KILL", "kk")
	if r := s.must(docker, "inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", "kk"); strings.TrimSpace(r.stdout) != "false 137" {
		t.Errorf("right after kill -s KILL: %s", r)
	}

	// Restarting a --rm container restarts it; it is not removed.
	s.must(docker, "run", "-d", "--rm", "--name", "rr", "busybox", "sleep", "300")
	s.must(docker, "restart", "-t", "0", "rr")
	if r := s.must(docker, "inspect", "-f", "{{.State.Running}}", "rr"); strings.TrimSpace(r.stdout) != "true" {
		t.Errorf("a --rm container after restart: %s", r)
	}
	// A restart policy cannot be set on an auto-removed container.
	if r := s.run(docker, "update", "--restart", "always", "rr"); r.code == 0 || !strings.Contains(r.stderr, "AutoRemove") {
		t.Errorf("update --restart on a --rm container: %s", r)
	}
	s.must(docker, "rm", "-f", "rr")

	// wait after a second run reports the code of the run that ended.
	s.run(docker, "run", "--name", "ww", "busybox", "sh", "-c", "exit 3")
	s.must(docker, "start", "ww")
	if r := s.run(docker, "wait", "ww"); strings.TrimSpace(r.stdout) != "3" {
		t.Errorf("wait after start: %s", r)
	}

	// A container in restart back-off is not removed without force. The
	// back-off doubles from 100 ms, as Docker's: wait until it is at least
	// 1.6 s (four restarts), or the rm below races the next start.
	s.must(docker, "run", "-d", "--restart", "always", "--name", "bb", "busybox", "false")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r := s.must(docker, "inspect", "-f", "{{.State.Restarting}} {{.RestartCount}}", "bb")
		var restarting bool
		var count int
		if _, err := fmt.Sscan(r.stdout, &restarting, &count); err == nil && restarting && count >= 4 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := s.run(docker, "rm", "bb"); r.code == 0 || !strings.Contains(r.stderr, "restarting") {
		t.Errorf("rm of a restarting container: %s", r)
	}
	s.must(docker, "rm", "-f", "bb")

	// Create refuses what Docker refuses, with its words, and makes nothing.
	before := s.must(docker, "ps", "-aq").stdout
	if r := s.run(docker, "create", "--health-cmd", "true", "--health-interval", "1us", "busybox"); r.code == 0 || !strings.Contains(r.stderr, "Interval in Healthcheck cannot be less than 1ms") {
		t.Errorf("create with a 1us health interval: %s", r)
	}
	if r := s.run(docker, "create", "--tmpfs", "relative", "busybox"); r.code == 0 || !strings.Contains(r.stderr, "must be absolute") {
		t.Errorf("create with a relative tmpfs target: %s", r)
	}
	if after := s.must(docker, "ps", "-aq").stdout; after != before {
		t.Errorf("refused creates left containers: %q, before %q", after, before)
	}
}

// TestExecLikeDocker: an exec whose binary is missing exits 126 (127 is a
// shell's "not found"), and execs leave exec_create, exec_start and
// exec_die events.
func TestExecLikeDocker(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	docker := needDocker(t)
	s := newSession(t, u)
	s.start()
	s.loadBusybox(docker)
	since := strings.TrimSpace(s.must(docker, "info", "--format", "{{.SystemTime}}").stdout)
	s.must(docker, "run", "-d", "--name", "ex", "busybox", "sleep", "300")
	if r := s.run(docker, "exec", "ex", "no-such-binary"); r.code != 126 {
		t.Errorf("exec of a missing binary: %s", r)
	}
	if r := s.run(docker, "exec", "ex", "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("exec exit 7: %s", r)
	}
	until := strings.TrimSpace(s.must(docker, "info", "--format", "{{.SystemTime}}").stdout)
	ev := s.must(docker, "events", "--since", since, "--until", until, "--format", "{{.Action}} {{.Actor.Attributes.exitCode}}").stdout
	for _, want := range []string{"exec_create: sh -c exit 7", "exec_start: sh -c exit 7", "exec_die 7"} {
		if !strings.Contains(ev, want) {
			t.Errorf("events lack %q:\n%s", want, ev)
		}
	}
	s.must(docker, "rm", "-f", "ex")
}

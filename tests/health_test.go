package tests

import (
	"strings"
	"testing"
	"time"
)

// TestHealthcheck: `docker run --health-cmd` probes the container: the
// status goes from starting to unhealthy while the check fails, to healthy
// once it passes, and shows in `docker ps` and in inspect's log; a
// committed image carries the check to its containers.
func TestHealthcheck(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "run", "-d", "--name", "hc", "--health-cmd", "cat /tmp/ok",
		"--health-interval", "200ms", "--health-retries", "2", "--health-timeout", "5s", "busybox", "sleep", "60")
	status := func() string {
		return strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.State.Health.Status}}", "hc").stdout)
	}
	if st := status(); st != "starting" && st != "unhealthy" {
		t.Errorf("status right after start: %q", st)
	}
	waitFor(t, 20*time.Second, func() bool { return status() == "unhealthy" })
	if out := s.must(docker, "inspect", "-f", "{{(index .State.Health.Log 0).ExitCode}} {{.State.Health.FailingStreak}}", "hc").stdout; !strings.HasPrefix(out, "1 ") {
		t.Errorf("failing probe's exit code and streak: %q", out)
	}
	s.must(docker, "exec", "hc", "sh", "-c", "echo fine > /tmp/ok")
	waitFor(t, 20*time.Second, func() bool { return status() == "healthy" })
	if ps := s.must(docker, "ps", "--format", "{{.Status}}").stdout; !strings.Contains(ps, "(healthy)") {
		t.Errorf("docker ps status: %q", ps)
	}
	if out := s.must(docker, "ps", "--filter", "health=healthy", "--format", "{{.Names}}").stdout; out != "hc\n" {
		t.Errorf("ps --filter health=healthy: %q", out)
	}
	if out := s.must(docker, "ps", "--filter", "health=unhealthy", "-q").stdout; out != "" {
		t.Errorf("ps --filter health=unhealthy: %q", out)
	}
	log := s.must(docker, "inspect", "-f", "{{range .State.Health.Log}}{{.Output}}{{end}}", "hc").stdout
	if !strings.Contains(log, "fine") {
		t.Errorf("probe output not in the health log: %q", log)
	}

	// commit keeps the healthcheck in the image, and a container of that
	// image runs it unless --no-healthcheck.
	s.must(docker, "commit", "hc", "hcimg:1")
	s.must(docker, "rm", "-f", "hc")
	s.must(docker, "run", "-d", "--name", "fromimage", "hcimg:1", "sleep", "60")
	waitFor(t, 20*time.Second, func() bool {
		return strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.State.Health.Status}}", "fromimage").stdout) == "healthy"
	})
	s.must(docker, "run", "-d", "--name", "nocheck", "--no-healthcheck", "hcimg:1", "sleep", "60")
	if out := s.must(docker, "inspect", "-f", "{{.State.Health}}", "nocheck").stdout; out != "<nil>\n" {
		t.Errorf("--no-healthcheck has health: %q", out)
	}
	s.must(docker, "rm", "-f", "fromimage", "nocheck")
}

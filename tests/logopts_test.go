package tests

import (
	"strings"
	"testing"
)

// A log option lodge does not apply (it does not rotate json-file logs
// yet) is not a silent success: the container runs and the CLI shows a
// warning naming it. Another log driver is refused.
func TestLogOptionsWarned(t *testing.T) {
	s, docker := containerSession(t)
	r := s.must(docker, "run", "--rm", "--log-opt", "max-size=1m", "busybox", "echo", "logged")
	if r.stdout != "logged\n" || !strings.Contains(r.stderr, "log option max-size is not applied") {
		t.Errorf("run with --log-opt max-size: %s", r)
	}
	if r := s.run(docker, "run", "--rm", "--log-driver", "syslog", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "json-file logs only") {
		t.Errorf("run with --log-driver syslog: %s", r)
	}
}

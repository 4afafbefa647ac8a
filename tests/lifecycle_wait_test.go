package tests

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodge-containers/lodge/proc"
)

// apiCalls sends requests (method, path) to lodged one after the other,
// as the session's user with curl from one shell, so that each comes right
// after the answer to the one before (no docker CLI start between them),
// and returns each answer as its status, a space and its body.
func (s *session) apiCalls(t *testing.T, calls ...[2]string) []string {
	t.Helper()
	var script strings.Builder
	for _, c := range calls {
		script.WriteString("curl -sS -w '\n@@ %{http_code}\n' --unix-socket \"$SOCK\" -X " + c[0] + " 'http://lodge/v1.51" + c[1] + "'\n")
	}
	r := s.runWith(func(cmd *exec.Cmd) { cmd.Env = append(cmd.Env, "SOCK="+s.socket()) }, "sh", "-c", script.String())
	if r.code != 0 {
		t.Fatalf("API calls: %s", r)
	}
	var out []string
	rest := r.stdout
	for {
		body, after, ok := strings.Cut(rest, "\n@@ ")
		if !ok {
			break
		}
		code, next, _ := strings.Cut(after, "\n")
		out = append(out, code+" "+strings.TrimSpace(body))
		rest = next
	}
	return out
}

// TestLifecycleKillWaits: POST /containers/{id}/kill with SIGKILL answers
// once the container has exited, as Docker's does: an inspect sent right
// after it sees the container stopped, with 137.
func TestLifecycleKillWaits(t *testing.T) {
	s, docker := containerSession(t)
	for _, name := range []string{"k1", "k2", "k3"} {
		// Many processes: the init's end, and so the exit, comes once the
		// kernel has killed and reaped every process of its pid namespace.
		s.must(docker, "run", "-d", "--name", name, "busybox", "sh", "-c", "i=0; while [ $i -lt 400 ]; do sleep 4242 & i=$((i+1)); done; exec sleep 4343")
		pid, _ := strconv.Atoi(strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.State.Pid}}", name).stdout))
		waitFor(t, 30*time.Second, func() bool { return len(proc.Descendants(pid)) >= 400 })
		out := s.apiCalls(t, [2]string{"POST", "/containers/" + name + "/kill?signal=KILL"}, [2]string{"GET", "/containers/" + name + "/json"})
		if len(out) != 2 || out[0] != "204 " {
			t.Fatalf("kill: %q", out)
		}
		if !strings.Contains(out[1], `"Running":false`) || !strings.Contains(out[1], `"ExitCode":137`) {
			i := strings.Index(out[1], `"State":`)
			t.Errorf("%s: inspect right after kill answered: %s", name, out[1][max(i, 0):])
		}
	}
}

// TestLifecycleUpdateAutoRemove409: a restart policy cannot be set on an
// auto-removed container: 409 Conflict, with Docker's words.
func TestLifecycleUpdateAutoRemove409(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "run", "-d", "--rm", "--name", "ar", "busybox", "sleep", "300")
	r := s.run("curl", "-sS", "-w", " %{http_code}", "--unix-socket", s.socket(), "-H", "Content-Type: application/json",
		"-d", `{"RestartPolicy":{"Name":"always"}}`, "http://lodge/v1.51/containers/ar/update")
	if !strings.HasSuffix(r.stdout, " 409") || !strings.Contains(r.stdout, "Restart policy cannot be updated because AutoRemove is enabled for the container") {
		t.Errorf("update --restart always of a --rm container: %s", r)
	}
	// "no" is no restart policy: allowed.
	r = s.run("curl", "-sS", "-w", " %{http_code}", "--unix-socket", s.socket(), "-H", "Content-Type: application/json",
		"-d", `{"RestartPolicy":{"Name":"no"}}`, "http://lodge/v1.51/containers/ar/update")
	if !strings.HasSuffix(r.stdout, " 200") {
		t.Errorf("update --restart no of a --rm container: %s", r)
	}
	s.must(docker, "rm", "-f", "ar")
}

// TestLifecycleWaitAcrossRestart: a docker wait that was waiting when the
// container restarted (docker restart, or its restart policy) reports the
// exit code of the run that ended, not the next run's.
func TestLifecycleWaitAcrossRestart(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "run", "-d", "--name", "wr", "busybox", "sleep", "300")
	for i := 0; i < 3; i++ {
		w := s.background(s.home, docker, "wait", "wr")
		time.Sleep(time.Second) // the wait is registered
		s.must(docker, "restart", "-t", "0", "wr")
		select {
		case err := <-w.done:
			w.done <- err
		case <-time.After(time.Minute):
			t.Fatal("docker wait did not return after docker restart")
		}
		if out := w.output(); strings.TrimSpace(out) != "137" {
			t.Errorf("docker wait across docker restart -t 0: %q, want 137", out)
		}
	}
	s.must(docker, "rm", "-f", "wr")

	s.must(docker, "run", "-d", "--name", "wp", "--restart", "always", "busybox", "sh", "-c", "sleep 1; exit 3")
	for i := 0; i < 3; i++ {
		if out := s.must(docker, "wait", "wp").stdout; strings.TrimSpace(out) != "3" {
			t.Errorf("docker wait of a container its policy restarts: %q, want 3", out)
		}
	}
	s.must(docker, "rm", "-f", "wp")
}

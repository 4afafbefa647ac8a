package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// waitCode waits for a ptyRun command to end and returns its exit code; a
// command that does not end in d fails the test (a detach that hangs).
func waitCode(t *testing.T, wait func() int, d time.Duration, what string, out *syncBuffer) int {
	t.Helper()
	ch := make(chan int, 1)
	go func() { ch <- wait() }()
	select {
	case code := <-ch:
		return code
	case <-time.After(d):
		t.Fatalf("%s did not end; output %q", what, out.String())
		return -1
	}
}

func running(s *session, docker, name string) string {
	s.t.Helper()
	return strings.TrimSpace(s.run(docker, "inspect", "-f", "{{.State.Status}}", name).stdout)
}

// TestDetachKeys: ctrl-p ctrl-q (or --detach-keys) leaves `docker run -it`,
// `docker attach` and `docker exec -it` with the container and the exec's
// process running, and the container's shell takes the next attach, as
// with Docker. API clients that send the keys through (the Go client,
// docker-py) see the daemon end the stream; invalid keys are refused.
func TestDetachKeys(t *testing.T) {
	s, docker := containerSession(t)
	start := time.Now().Unix()

	master, out, wait := s.ptyRun(24, 80, docker, "run", "-it", "--name", "dk", "busybox", "sh")
	waitOutput(t, out, "#", 15*time.Second)
	master.Write([]byte("echo o$((1+1))ne\n"))
	waitOutput(t, out, "o2ne", 10*time.Second)
	master.Write([]byte{16, 17})
	if code := waitCode(t, wait, 20*time.Second, "run -it after ctrl-p ctrl-q", out); code != 0 {
		t.Errorf("run -it detached with exit code %d; output %q", code, out.String())
	}
	if st := running(s, docker, "dk"); st != "running" {
		t.Fatalf("after detaching from run -it the container is %q", st)
	}

	// attach again: the same shell answers; ctrl-p ctrl-q leaves it again.
	master, out, wait = s.ptyRun(24, 80, docker, "attach", "dk")
	time.Sleep(500 * time.Millisecond)
	master.Write([]byte("echo t$((2+1))wo\n"))
	waitOutput(t, out, "t3wo", 10*time.Second)
	master.Write([]byte{16, 17})
	waitCode(t, wait, 20*time.Second, "attach after ctrl-p ctrl-q", out)
	waitOutput(t, out, "read escape sequence", 5*time.Second) // as Docker's CLI says it
	if st := running(s, docker, "dk"); st != "running" {
		t.Fatalf("after detaching from attach the container is %q", st)
	}

	// --detach-keys: the container's own keys.
	master, out, wait = s.ptyRun(24, 80, docker, "attach", "--detach-keys", "ctrl-x,x", "dk")
	time.Sleep(500 * time.Millisecond)
	master.Write([]byte("echo f$((3+1))our\n"))
	waitOutput(t, out, "f4our", 10*time.Second)
	master.Write([]byte{24, 'x'})
	waitCode(t, wait, 20*time.Second, "attach after ctrl-x x", out)
	if st := running(s, docker, "dk"); st != "running" {
		t.Fatalf("after detaching with ctrl-x,x the container is %q", st)
	}
	// Invalid keys are refused before the stream: the CLI says only the
	// status for an attach (with Docker too), the message for an exec.
	if r := s.run(docker, "attach", "--no-stdin", "--detach-keys", "ctrl-", "dk"); r.code == 0 || !strings.Contains(r.stderr, "received 400") {
		t.Errorf("attach with invalid detach keys: %s", r)
	}
	if r := s.run(docker, "exec", "--detach-keys", "ctrl-", "dk", "true"); r.code == 0 || !strings.Contains(r.stderr, "Invalid escape keys (ctrl-) provided") {
		t.Errorf("exec with invalid detach keys: %s", r)
	}

	// exec -it: the exec's shell goes on running after a detach.
	master, out, wait = s.ptyRun(24, 80, docker, "exec", "-it", "dk", "sh")
	waitOutput(t, out, "#", 15*time.Second)
	master.Write([]byte("echo $$ > /tmp/ex; echo s$((4+1))aved\n"))
	waitOutput(t, out, "s5aved", 10*time.Second)
	master.Write([]byte{16, 17})
	waitCode(t, wait, 20*time.Second, "exec -it after ctrl-p ctrl-q", out)
	if r := s.run(docker, "exec", "dk", "sh", "-c", "kill -0 $(cat /tmp/ex) && echo alive"); r.stdout != "alive\n" {
		t.Errorf("the exec's shell after a detach: %s", r)
	}

	// The Go client sends the keys on: the daemon must end the stream.
	probe := staticTool(t, "attachprobe")
	for _, keys := range []string{"", "ctrl-x,x"} {
		r := s.run(probe, "attach", "dk", keys)
		if r.code != 0 || r.stdout != "stream ended\n" {
			t.Errorf("API attach with detach keys %q: %s", keys, r)
		}
		if st := running(s, docker, "dk"); st != "running" {
			t.Fatalf("after an API detach (%q) the container is %q", keys, st)
		}
	}
	if r := s.run(probe, "exec", "dk", ""); r.code != 0 || r.stdout != "stream ended\nexec running true\n" {
		t.Errorf("API exec detach: %s", r)
	}
	// POST /exec/{id}/start frames by its own Tty, not the exec's.
	if r := s.run(probe, "frames", "dk"); r.code != 0 || r.stdout != "create tty false start tty true: \"hi\\n\"\n"+
		"create tty true start tty false: \"\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x04hi\\r\\n\"\n" {
		t.Errorf("exec start framing: %s", r)
	}

	r := s.must(docker, "events", "--since", fmt.Sprint(start), "--until", fmt.Sprint(time.Now().Unix()+1), "--filter", "container=dk", "--format", "{{.Action}}")
	actions := map[string]bool{}
	for _, a := range strings.Split(r.stdout, "\n") {
		actions[a] = true
	}
	for _, want := range []string{"attach", "detach", "exec_detach"} {
		if !actions[want] {
			t.Errorf("no %s event: %q", want, r.stdout)
		}
	}

	// And the shell still takes input to the end.
	master, out, wait = s.ptyRun(24, 80, docker, "attach", "dk")
	time.Sleep(500 * time.Millisecond)
	master.Write([]byte("exit 7\n"))
	if code := waitCode(t, wait, 20*time.Second, "attach until exit", out); code != 7 {
		t.Errorf("attach exit code %d, want 7; output %q", code, out.String())
	}
}

// TestLodgeDetachKeys: lodge's own run -it and attach leave a container
// running on ctrl-p ctrl-q (lodged sees the keys: lodge sends them on)
// instead of waiting for it to end.
func TestLodgeDetachKeys(t *testing.T) {
	s, docker := containerSession(t)
	master, out, wait := s.ptyRun(24, 80, "lodge", "run", "-it", "--name", "ld", "busybox", "sh")
	waitOutput(t, out, "#", 15*time.Second)
	master.Write([]byte("echo o$((1+1))ne\n"))
	waitOutput(t, out, "o2ne", 10*time.Second)
	master.Write([]byte{16, 17})
	if code := waitCode(t, wait, 20*time.Second, "lodge run -it after ctrl-p ctrl-q", out); code != 0 {
		t.Errorf("lodge run -it detached with exit code %d; output %q", code, out.String())
	}
	if st := running(s, docker, "ld"); st != "running" {
		t.Fatalf("after detaching from lodge run -it the container is %q", st)
	}
	master, out, wait = s.ptyRun(24, 80, "lodge", "attach", "ld")
	time.Sleep(500 * time.Millisecond)
	master.Write([]byte("echo t$((2+1))wo\n"))
	waitOutput(t, out, "t3wo", 10*time.Second)
	master.Write([]byte{16, 17})
	waitCode(t, wait, 20*time.Second, "lodge attach after ctrl-p ctrl-q", out)
	waitOutput(t, out, "read escape sequence", 5*time.Second)
	if st := running(s, docker, "ld"); st != "running" {
		t.Fatalf("after detaching from lodge attach the container is %q", st)
	}
	s.must(docker, "rm", "-f", "ld") // containers outlive lodged
}

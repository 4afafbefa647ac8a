package tests

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// streamPod is a pod with no host port: port-forward is the only way in.
const streamPod = `{
  "metadata": {"name": "stream", "namespace": "default", "uid": "crictl-stream-1", "attempt": 0},
  "hostname": "streampod",
  "log_directory": %q
}`

// hostNetPod shares lodged's network namespace (the pod's "node").
const hostNetPod = `{
  "metadata": {"name": "hostnet", "namespace": "default", "uid": "crictl-stream-2", "attempt": 0},
  "log_directory": %q,
  "linux": {"security_context": {"namespace_options": {"network": 2}}}
}`

const hostNetServer = `{
  "metadata": {"name": "server", "attempt": 0},
  "image": {"image": "busybox:latest"},
  "command": ["nc", "-ll", "-p", "80", "-e", "echo", "host-ok"]
}`

// streamServer answers "ok" to every connection on the pod's port 80.
const streamServer = `{
  "metadata": {"name": "server", "attempt": 0},
  "image": {"image": "busybox:latest"},
  "command": ["nc", "-ll", "-p", "80", "-e", "echo", "ok"]
}`

const streamApp = `{
  "metadata": {"name": "app", "attempt": 0},
  "image": {"image": "busybox:latest"},
  "command": ["sleep", "600"]
}`

// streamReader reads one line from its stdin, which crictl attach gives it.
const streamReader = `{
  "metadata": {"name": "reader", "attempt": 0},
  "image": {"image": "busybox:latest"},
  "command": ["sh", "-c", "read l; echo got:$l; echo err:$l >&2"],
  "stdin": true
}`

// streamShell is a shell on a tty, for crictl attach -it.
const streamShell = `{
  "metadata": {"name": "shell", "attempt": 0},
  "image": {"image": "busybox:latest"},
  "command": ["sh"],
  "stdin": true,
  "tty": true
}`

// TestCRIStreaming drives the CRI's streaming calls with crictl, through
// lodged's streaming server: exec with stdin, exit codes and a tty that
// follows its terminal's size; attach, with and without a tty;
// port-forward from the host to the pod's localhost, where a neighbour
// container reaches the same port.
func TestCRIStreaming(t *testing.T) {
	// The streaming server on a port of the test's choosing.
	streamPort := freePort(t)
	docker := needDocker(t)
	s := newSession(t, lookupUser(t, "LODGE_TEST_USER"))
	// --debug: the streaming server logs whom it refuses at debug level.
	s.start("--debug", "--cri-stream-address", fmt.Sprintf("127.0.0.1:%d", streamPort))
	s.loadBusybox(docker)
	t.Cleanup(func() {
		if ids := strings.Fields(s.run(docker, "ps", "-aq").stdout); len(ids) > 0 {
			s.run(docker, append([]string{"rm", "-f"}, ids...)...)
		}
	})
	cc, ccRun := crictlFor(t, s)
	crictl := clientBinary(t, "crictl")
	ep := "unix://" + filepath.Join(s.runDir, "cri.sock")
	dir := s.buildDir("cristream", map[string]string{
		"pod.json":    fmt.Sprintf(streamPod, filepath.Join(s.home, "podlogs")),
		"server.json": streamServer, "app.json": streamApp,
		"reader.json": streamReader, "shell.json": streamShell,
		"hostnet.json": fmt.Sprintf(hostNetPod, filepath.Join(s.home, "podlogs")), "hostserver.json": hostNetServer,
	})
	podJSON := filepath.Join(dir, "pod.json")
	pod := strings.TrimSpace(cc("runp", podJSON))
	start := func(name string) string {
		id := strings.TrimSpace(cc("create", pod, filepath.Join(dir, name+".json"), podJSON))
		cc("start", id)
		return id
	}
	server, app := start("server"), start("app")
	// Nothing listens before the first streaming call.
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", streamPort), time.Second); err == nil {
		c.Close()
		t.Errorf("the streaming port %d is open before any streaming call", streamPort)
	}

	t.Run("exec", func(t *testing.T) {
		// The URL is on the address lodged was given.
		if r := ccRun("--debug", "exec", app, "true"); r.code != 0 || !strings.Contains(r.stderr, fmt.Sprintf("http://127.0.0.1:%d/exec/", streamPort)) {
			t.Errorf("crictl --debug exec: want the URL on port %d: %s", streamPort, r)
		}
		r := s.runWith(func(c *exec.Cmd) { c.Stdin = strings.NewReader("hi from stdin\n") },
			crictl, "--runtime-endpoint", ep, "exec", "-i", app, "cat")
		if r.code != 0 || r.stdout != "hi from stdin\n" {
			t.Errorf("echo ... | crictl exec -i app cat: %s", r)
		}
		r = ccRun("exec", app, "sh", "-c", "echo to-out; echo to-err >&2; exit 3")
		if r.code == 0 || r.stdout != "to-out\n" || !strings.Contains(r.stderr, "to-err\n") || !strings.Contains(r.stderr, "exit code 3") {
			t.Errorf("crictl exec, stdout and stderr apart, exit 3: %s", r)
		}
		if r := ccRun("exec", app, "true"); r.code != 0 || r.stdout != "" {
			t.Errorf("crictl exec app true: %s", r)
		}
		// Output to its last byte, when the process ends right after it.
		if r := ccRun("exec", app, "sh", "-c", "head -c 5000000 /dev/zero | tr '\\0' a; echo -n end"); r.code != 0 || len(r.stdout) != 5000003 || !strings.HasSuffix(r.stdout, "aend") {
			t.Errorf("crictl exec of 5 MB of output: exit %d, %d bytes, ends %q", r.code, len(r.stdout), r.stdout[max(0, len(r.stdout)-10):])
		}
		// The pod's containers share its localhost.
		var got string
		for range 50 {
			if got = ccRun("exec", app, "nc", "127.0.0.1", "80").stdout; got == "ok\n" {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got != "ok\n" {
			t.Errorf("app reaching server on the pod's localhost: %q", got)
		}
		if r := ccRun("exec", server, "cat", "/no/such/file"); r.code == 0 || !strings.Contains(r.stderr, "exit code 1") {
			t.Errorf("crictl exec of a failing command: %s", r)
		}
	})

	t.Run("other-users-refused", func(t *testing.T) {
		// The streaming server answers lodged's user alone, like cri.sock:
		// on loopback every user of the machine reaches its port. A request
		// with a made-up token gets the streaming library's 404 from
		// lodged's user, and from anyone else the connection closed with
		// no answer at all.
		other := lookupUser(t, "LODGE_TEST_OTHER_USER")
		req := "GET /exec/notatoken HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
		script := fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d || exit 9; printf '%s' >&3; timeout 20 cat <&3", streamPort, req)
		if r := s.run("bash", "-c", script); !strings.HasPrefix(r.stdout, "HTTP/1.1 404") {
			t.Errorf("lodged's user with a bad token: want the library's 404: %s", r)
		}
		r := s.runWith(func(c *exec.Cmd) { asUser(c, other); c.Dir = "/" }, "bash", "-c", script)
		// Connected (9 is a refused connect), and closed (timeout exits
		// 124): the write or the read may see the close first.
		if r.stdout != "" || r.code == 9 || r.code == 124 {
			t.Errorf("%s connecting to the streaming port: want it closed unanswered: %s", other.name, r)
		}
		// Root, the test itself, is another user too.
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", streamPort), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		_, _ = io.WriteString(c, req)
		b, err := io.ReadAll(c)
		if len(b) != 0 || isTimeout(err) {
			t.Errorf("root connecting to the streaming port: want it closed unanswered: %q, %v", b, err)
		}
		// lodged names whom it refused, as its user namespace sees them:
		// users it does not map are the overflow uid.
		if log, _ := os.ReadFile(filepath.Join(s.runDir, "lodged.log")); strings.Count(string(log), "refused CRI streaming connection") < 2 || !strings.Contains(string(log), "uid=65534") {
			t.Errorf("lodged.log: want two refusals of uid 65534:\n%s", log)
		}
		// And lodged's user still streams.
		if r := ccRun("exec", app, "echo", "still-mine"); r.code != 0 || r.stdout != "still-mine\n" {
			t.Errorf("crictl exec by lodged's user after refusals: %s", r)
		}
	})

	t.Run("exec-tty", func(t *testing.T) {
		master, out, wait := s.ptyRun(24, 80, crictl, "--runtime-endpoint", ep, "exec", "-it", app, "sh")
		checkSizes(t, master, out, "24 80", 40, 132)
		master.Write([]byte("exit 5\n"))
		if code := wait(); code == 0 || !strings.Contains(out.String(), "exit code 5") {
			t.Errorf("crictl exec -it ... exit 5: crictl exited %d\n%s", code, out.String())
		}
	})

	t.Run("attach", func(t *testing.T) {
		reader := start("reader")
		r := s.runWith(func(c *exec.Cmd) { c.Stdin = strings.NewReader("hello\n") },
			crictl, "--runtime-endpoint", ep, "attach", "-i", reader)
		if r.code != 0 || !strings.Contains(r.stdout, "got:hello\n") || !strings.Contains(r.stderr, "err:hello\n") {
			t.Errorf("crictl attach -i to a container reading its stdin: %s", r)
		}
	})

	t.Run("attach-tty", func(t *testing.T) {
		shell := start("shell")
		master, out, wait := s.ptyRun(30, 100, crictl, "--runtime-endpoint", ep, "attach", "-it", shell)
		// The shell printed its prompt before anyone attached: a new line
		// brings another.
		master.Write([]byte("\n"))
		checkSizes(t, master, out, "30 100", 50, 150)
		master.Write([]byte("exit\n"))
		wait()
		if r := ccRun("inspect", "-o", "go-template", "--template", "{{.status.state}}", shell); !strings.Contains(r.stdout, "CONTAINER_EXITED") {
			t.Errorf("the attached shell after exit: %s", r)
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		portForward(t, s, crictl, ep, pod, "ok\n")
	})

	t.Run("port-forward-host-network", func(t *testing.T) {
		hostJSON := filepath.Join(dir, "hostnet.json")
		hpod := strings.TrimSpace(cc("runp", hostJSON))
		cc("start", strings.TrimSpace(cc("create", hpod, filepath.Join(dir, "hostserver.json"), hostJSON)))
		portForward(t, s, crictl, ep, hpod, "host-ok\n")
		cc("stopp", hpod)
		cc("rmp", hpod)
	})

	cc("stopp", pod)
	// Nothing streams into a stopped pod.
	if r := ccRun("exec", app, "true"); r.code == 0 {
		t.Errorf("crictl exec into a stopped container: %s", r)
	}
	cc("rmp", pod)
}

// portForward runs crictl port-forward from a free host port to the pod's
// port 80 and checks that two connections through it get want.
func portForward(t *testing.T, s *session, crictl, ep, pod, want string) {
	t.Helper()
	port := freePort(t)
	fwd := s.command(t.Context(), crictl, "--runtime-endpoint", ep, "port-forward", pod, fmt.Sprintf("%d:80", port))
	var fwdOut syncBuffer
	fwd.Stdout, fwd.Stderr = &fwdOut, &fwdOut
	if err := fwd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { fwd.Process.Kill(); fwd.Wait() }()
	waitOutput(t, &fwdOut, "Forwarding from", 30*time.Second)
	// Each connection gets its own stream into the pod.
	for i := range 2 {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v\n%s", i, err, fwdOut.String())
		}
		c.SetDeadline(time.Now().Add(15 * time.Second))
		b, err := io.ReadAll(c)
		c.Close()
		if string(b) != want {
			t.Errorf("connection %d through crictl port-forward: %q, %v; want %q\n%s", i, b, err, want, fwdOut.String())
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

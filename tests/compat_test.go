package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Issue 17: what docker compose v2 and testcontainers do through the
// docker CLI that lodge got wrong.

// compatSession is a container session whose containers are removed
// when the test ends: they would (rightly) outlive the daemon's stop.
func compatSession(t *testing.T) (*session, string) {
	t.Helper()
	s, docker := containerSession(t)
	t.Cleanup(func() {
		if ids := strings.Fields(s.run(docker, "ps", "-aq").stdout); len(ids) > 0 {
			s.run(docker, append([]string{"rm", "-f"}, ids...)...)
		}
	})
	return s, docker
}

// staticTool builds one of testdata's small static programs for a
// container to run from a bind mount.
func staticTool(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lodge-"+name+"-") // the test user must reach it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, out)
	}
	return bin
}

// TestEphemeralHostPort: -p with host port 0 (and none) takes a free
// port, which inspect and `docker port` show and which answers.
func TestEphemeralHostPort(t *testing.T) {
	s, docker := compatSession(t)
	s.must(docker, "run", "-d", "--name", "web", "-p", "127.0.0.1:0:80", "-p", "127.0.0.1::81",
		"busybox", "sh", "-c", "mkdir /www; echo up > /www/i; httpd -p 81 -h /www; exec httpd -f -p 80 -h /www")
	for _, ctr := range []string{"80/tcp", "81/tcp"} {
		hp := strings.TrimSpace(s.must(docker, "inspect", "-f", fmt.Sprintf(`{{(index (index .NetworkSettings.Ports "%s") 0).HostPort}}`, ctr), "web").stdout)
		if hp == "" || hp == "0" {
			t.Fatalf("%s: host port %q", ctr, hp)
		}
		if out := s.must(docker, "port", "web", ctr).stdout; out != "127.0.0.1:"+hp+"\n" {
			t.Errorf("docker port web %s: %q, inspect said %s", ctr, out, hp)
		}
		if body := httpGet(t, "http://127.0.0.1:"+hp+"/i"); body != "up\n" {
			t.Errorf("%s on %s answered %q", ctr, hp, body)
		}
	}
}

// TestEnvWithoutValue: a bare name unsets the variable, at create and in
// exec, instead of failing in the runtime.
func TestEnvWithoutValue(t *testing.T) {
	s, docker := compatSession(t)
	s.must(docker, "build", "-q", "-t", "envimg", s.buildDir("envimg", map[string]string{"Dockerfile": "FROM busybox\nENV GONE=1 KEPT=2\n"}))
	out := s.must(docker, "run", "--rm", "-e", "MAYBE_UNSET_IN_CLIENT", "-e", "GONE", "envimg", "sh", "-c", "echo ${MAYBE_UNSET_IN_CLIENT-unset} ${GONE-unset} $KEPT").stdout
	if out != "unset unset 2\n" {
		t.Errorf("run -e NAME: %q", out)
	}
	s.must(docker, "run", "-d", "--name", "cc", "-e", "SET=yes", "busybox", "sleep", "600")
	if out := s.must(docker, "exec", "-e", "SET", "-e", "NOT_IN_CLIENT", "cc", "sh", "-c", "echo ${SET-unset} ${NOT_IN_CLIENT-unset}").stdout; out != "unset unset\n" {
		t.Errorf("exec -e NAME: %q", out)
	}
}

// TestHealthStartInterval: in the start period the probes come every
// StartInterval, so a container whose interval is an hour turns healthy
// at once.
func TestHealthStartInterval(t *testing.T) {
	s, docker := compatSession(t)
	s.must(docker, "run", "-d", "--name", "hh", "--health-cmd", "true", "--health-interval", "1h",
		"--health-start-period", "1h", "--health-start-interval", "200ms", "busybox", "sleep", "600")
	waitFor(t, 15*time.Second, func() bool {
		return strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.State.Health.Status}}", "hh").stdout) == "healthy"
	})
}

// TestImageExpose: an image's EXPOSE is in the container's config: -P
// publishes it, and commit keeps it.
func TestImageExpose(t *testing.T) {
	s, docker := compatSession(t)
	s.must(docker, "build", "-q", "-t", "exposed", s.buildDir("exposed", map[string]string{"Dockerfile": "FROM busybox\nEXPOSE 8000\nCMD [\"sh\", \"-c\", \"echo exposed > /i; exec httpd -f -p 8000 -h /\"]\n"}))
	s.must(docker, "run", "-d", "--name", "ee", "-P", "exposed")
	if out := s.must(docker, "inspect", "-f", "{{json .Config.ExposedPorts}}", "ee").stdout; out != "{\"8000/tcp\":{}}\n" {
		t.Errorf("Config.ExposedPorts %q", out)
	}
	hp := strings.TrimSpace(s.must(docker, "inspect", "-f", `{{(index (index .NetworkSettings.Ports "8000/tcp") 0).HostPort}}`, "ee").stdout)
	if body := httpGet(t, "http://127.0.0.1:"+hp+"/i"); body != "exposed\n" {
		t.Errorf("-P published port answered %q", body)
	}
	s.must(docker, "commit", "ee", "exposed:committed")
	if out := s.must(docker, "image", "inspect", "-f", "{{json .Config.ExposedPorts}}", "exposed:committed").stdout; !strings.Contains(out, "8000/tcp") {
		t.Errorf("commit lost EXPOSE: %q", out)
	}
}

// TestNamespaceModes: --pid, --ipc and --uts host or container:X are
// honoured, and a mode lodge cannot honour is refused, never ignored.
func TestNamespaceModes(t *testing.T) {
	s, docker := compatSession(t)
	s.must(docker, "run", "-d", "--name", "aa", "busybox", "sleep", "600")
	ns := func(args ...string) string {
		return s.must(docker, append([]string{"run", "--rm"}, append(args, "busybox", "sh", "-c", "for n in pid ipc uts; do busybox readlink /proc/self/ns/$n; done")...)...).stdout
	}
	own := strings.Fields(s.must(docker, "exec", "aa", "sh", "-c", "for n in pid ipc uts; do busybox readlink /proc/1/ns/$n; done").stdout)
	joined := strings.Fields(ns("--pid", "container:aa", "--ipc", "container:aa"))
	if len(own) != 3 || len(joined) != 3 || joined[0] != own[0] || joined[1] != own[1] || joined[2] == own[2] {
		t.Errorf("container:a namespaces %v, a's %v", joined, own)
	}
	if out := s.must(docker, "run", "--rm", "--pid", "container:aa", "busybox", "sh", "-c", "busybox ps -o comm | grep -c sleep").stdout; out != "1\n" {
		t.Errorf("--pid container:a does not see a's sleep: %q", out)
	}
	// host: lodged's namespaces (a process of lodged's, the session's
	// lodged child, is in them).
	lodged := s.childPID()
	want := []string{}
	for _, n := range []string{"pid", "ipc", "uts"} {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", lodged, n))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, l)
	}
	if got := strings.Fields(ns("--pid", "host", "--ipc", "host", "--uts", "host")); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("host namespaces %v, lodged's %v", got, want)
	}
	if out := s.must(docker, "run", "--rm", "--pid", "host", "busybox", "sh", "-c", fmt.Sprintf("test -d /proc/%d && echo sees-lodged", lodged)).stdout; out != "sees-lodged\n" {
		t.Errorf("--pid host /proc: %q", out)
	}
	// lodged keeps the host's UTS namespace, so the host's name shows.
	if mine, _ := os.Readlink("/proc/self/ns/uts"); mine == want[2] {
		host, _ := os.Hostname()
		if out := s.must(docker, "run", "--rm", "--uts", "host", "busybox", "busybox", "hostname").stdout; out != host+"\n" {
			t.Errorf("--uts host hostname %q, want %q", out, host)
		}
	}
	for _, bad := range [][]string{{"--uts", "container:aa"}, {"--ipc", "bogus"}, {"--uts", "host", "--hostname", "x"}, {"--pid", "container:nosuch"}} {
		r := s.run(docker, append(append([]string{"run", "--rm"}, bad...), "busybox", "true")...)
		if r.code == 0 {
			t.Errorf("%v accepted", bad)
		}
	}
	// --device: a node is there; a missing one is refused.
	if out := s.must(docker, "run", "--rm", "--device", "/dev/null:/dev/extra", "busybox", "sh", "-c", "test -c /dev/extra && echo char").stdout; out != "char\n" {
		t.Errorf("--device /dev/null:/dev/extra: %q", out)
	}
	r := s.run(docker, "run", "--rm", "--device", "/dev/lodge-no-such-device", "busybox", "true")
	if r.code == 0 || !strings.Contains(r.stderr, `error gathering device information while adding custom device "/dev/lodge-no-such-device": no such file or directory`) {
		t.Errorf("missing device: %s", r)
	}
}

// TestBindSocketAndFIFO: a container drives lodged through its bound
// socket, as testcontainers' Ryuk and docker-in-docker clients do; a bound
// FIFO does not hang the request.
func TestBindSocketAndFIFO(t *testing.T) {
	s, docker := compatSession(t)
	ping := staticTool(t, "sockping")
	s.must(docker, "run", "-d", "--name", "marker", "busybox", "sleep", "600")
	out := s.must(docker, "run", "--rm", "-v", s.socket()+":/var/run/docker.sock", "-v", ping+":/sockping:ro", "busybox", "/sockping").stdout
	if !strings.Contains(out, "/_ping 200 OK") || !strings.Contains(out, `"/marker"`) {
		t.Errorf("client in the container:\n%s", out)
	}
	fifo := filepath.Join(s.home, "fifo")
	if err := unix.Mkfifo(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chown(fifo, s.u.uid, s.u.gid)
	done := make(chan result, 1)
	go func() {
		done <- s.run(docker, "run", "--rm", "-v", fifo+":/fifo", "busybox", "sh", "-c", "echo through-fifo > /fifo")
	}()
	f, err := os.OpenFile(fifo, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64)
	n, _ := f.Read(buf)
	select {
	case r := <-done:
		if r.code != 0 {
			t.Errorf("run with a FIFO: %s", r)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("run with a bound FIFO still hanging after 60s")
	}
	if string(buf[:n]) != "through-fifo\n" {
		t.Errorf("read from the FIFO: %q", buf[:n])
	}
}

// TestSystemPrune: `docker system prune -af` goes through the build cache
// too and leaves nothing it should remove.
func TestSystemPrune(t *testing.T) {
	s, docker := compatSession(t)
	s.must(docker, "build", "-q", "-t", "pruneme", s.buildDir("pruneme", map[string]string{"Dockerfile": "FROM busybox\nRUN echo x > /x\n"}))
	s.must(docker, "run", "--name", "stopped", "busybox", "true")
	s.must(docker, "network", "create", "unused")
	// Without -a the CLI asks for the build cache's dangling entries only.
	s.must(docker, "system", "prune", "-f")
	r := s.must(docker, "system", "prune", "-af")
	if !strings.Contains(r.stdout, "Total reclaimed space") {
		t.Errorf("docker system prune -af: %s", r)
	}
	if out := s.must(docker, "ps", "-aq").stdout; out != "" {
		t.Errorf("containers left: %q", out)
	}
	if out := s.must(docker, "images", "-q").stdout; out != "" {
		t.Errorf("images left: %q", out)
	}
	if out := s.must(docker, "network", "ls", "--format", "{{.Name}}").stdout; strings.Contains(out, "unused") {
		t.Errorf("networks left: %q", out)
	}
}

// TestImageEvents: tagging and removing an image is announced, and the
// image filter finds the events by the name without its tag.
func TestImageEvents(t *testing.T) {
	s, docker := compatSession(t)
	since := fmt.Sprint(time.Now().Add(-time.Second).Unix())
	s.must(docker, "tag", "busybox", "mine:1")
	s.must(docker, "rmi", "mine:1")
	out := s.must(docker, "events", "--since", since, "--until", fmt.Sprint(time.Now().Add(time.Second).Unix()),
		"--filter", "type=image", "--filter", "image=mine", "--format", "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.ID}}").stdout
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "tag mine:1 sha256:") || !strings.HasPrefix(lines[1], "untag mine:1 sha256:") {
		t.Errorf("image events:\n%s", out)
	}
}

// TestContainerEvents: what reads or changes a container besides its
// lifecycle is announced with Docker's actions and attributes: docker cp
// both ways, rename (with the old name), top, export, commit (with the
// image) and rm -f of a running container (its kill, signal 9).
func TestContainerEvents(t *testing.T) {
	s, docker := compatSession(t)
	since := fmt.Sprint(time.Now().Add(-time.Second).Unix())
	s.must(docker, "run", "-d", "--name", "evts", "busybox", "sleep", "300")
	out := filepath.Join(s.base, "hostname")
	s.must(docker, "cp", "evts:/etc/hostname", out)
	if err := os.Chmod(out, 0o644); err != nil {
		t.Fatal(err)
	}
	s.must(docker, "cp", out, "evts:/tmp/")
	s.must(docker, "rename", "evts", "evts2")
	s.must(docker, "top", "evts2")
	s.must(docker, "export", "-o", filepath.Join(s.base, "evts.tar"), "evts2")
	s.must(docker, "commit", "-m", "note", "evts2", "evimg:1")
	t.Cleanup(func() { s.run(docker, "rmi", "evimg:1") })
	s.must(docker, "rm", "-f", "evts2")
	got := s.must(docker, "events", "--since", since, "--until", fmt.Sprint(time.Now().Add(time.Second).Unix()),
		"--filter", "type=container", "--format", `{{.Action}} {{.Actor.Attributes.name}} {{index .Actor.Attributes "path"}} {{index .Actor.Attributes "oldName"}} {{index .Actor.Attributes "signal"}} {{index .Actor.Attributes "comment"}} {{index .Actor.Attributes "imageRef"}}`).stdout
	var actions []string
	for _, l := range strings.Split(strings.TrimSpace(got), "\n") {
		if !strings.HasPrefix(l, "create ") && !strings.HasPrefix(l, "start ") {
			actions = append(actions, strings.Join(strings.Fields(l), " "))
		}
	}
	want := []string{
		"archive-path evts /etc/hostname",
		"extract-to-dir evts /tmp/",
		"rename evts2 /evts",
		"top evts2",
		"export evts2",
		"commit evts2 note evimg:1",
		"kill evts2 9",
		"die evts2",
		"destroy evts2",
	}
	if strings.Join(actions, "\n") != strings.Join(want, "\n") {
		t.Errorf("container events:\n%s\nwant (after create and start):\n%s", strings.Join(actions, "\n"), strings.Join(want, "\n"))
	}
}

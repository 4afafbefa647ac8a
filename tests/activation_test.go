package tests

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSystemdUnits: lodge daemon install writes a socket-activated,
// Type=notify service that systemd-analyze accepts as it is written.
func TestSystemdUnits(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		skipOrFail(t, "systemd-analyze is not installed (Debian's systemd package; hack/setup-root.sh installs it)")
	}
	s := newSession(t, u)
	r := s.must("lodge", "daemon", "install")
	for _, want := range []string{"lodged.service", "lodged.socket", "systemctl --user enable --now lodged.socket", "loginctl enable-linger " + u.name} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("lodge daemon install does not say %q:\n%s", want, r)
		}
	}
	dir := filepath.Join(s.home, ".config", "systemd", "user")
	service, socket := filepath.Join(dir, "lodged.service"), filepath.Join(dir, "lodged.socket")
	unit, _ := os.ReadFile(service)
	for _, want := range []string{"\nType=notify\n", "\nExecStart=" + binDir + "/lodged\n", "\nDelegate=yes\n", "\nKillMode=process\n", "\nRequires=lodged.socket\n"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("lodged.service lacks %q:\n%s", want, unit)
		}
	}
	sock, _ := os.ReadFile(socket)
	for _, want := range []string{"ListenStream=%t/lodge/lodge.sock\n", "SocketMode=0600\n", "WantedBy=sockets.target"} {
		if !strings.Contains(string(sock), want) {
			t.Errorf("lodged.socket lacks %q:\n%s", want, sock)
		}
	}
	// verify exits 0 on what it merely warns about: any word from it is
	// a finding.
	if r := s.run(analyze, "--user", "verify", service, socket); r.code != 0 || strings.TrimSpace(r.stdout+r.stderr) != "" {
		t.Errorf("systemd-analyze --user verify: %s", r)
	}
	s.must("lodge", "daemon", "uninstall")
	if fileExists(service) || fileExists(socket) {
		t.Error("lodge daemon uninstall left a unit")
	}
}

// TestSocketActivation: lodged started by systemd-socket-activate serves
// the socket it was handed (not one of its own), tells NOTIFY_SOCKET
// READY=1 only once the API answers, and leaves the socket in place when
// it stops, for the next activation.
func TestSocketActivation(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	docker := needDocker(t)
	activate, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		skipOrFail(t, "systemd-socket-activate is not installed (Debian's systemd package; hack/setup-root.sh installs it)")
	}
	s := newSession(t, u)
	// systemd makes %t/lodge (DirectoryMode=0700) before it binds.
	if err := os.MkdirAll(s.runDir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(s.runDir, u.uid, u.gid)

	// The service manager's end of sd_notify.
	notifyPath := filepath.Join(s.base, "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	os.Chown(notifyPath, u.uid, u.gid)

	args := []string{"-l", s.socket()}
	for _, e := range append(s.env(), "NOTIFY_SOCKET="+notifyPath) {
		args = append(args, "-E", e)
	}
	args = append(args, filepath.Join(binDir, "lodged"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := s.command(ctx, activate, args...)
	if in := s.inCgroup(); in != nil {
		in(cmd)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.started = true
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Errorf("lodged under systemd-socket-activate did not exit after stop:\n%s", out.String())
		}
	}()

	var before syscall.Stat_t
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Stat(s.socket(), &before) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("systemd-socket-activate made no socket:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Nothing runs lodged until the first request, which waits for it.
	if fileExists(filepath.Join(s.runDir, "lodged.pid")) {
		t.Errorf("lodged started before the first connection")
	}
	first := make(chan result, 1)
	go func() { first <- s.run(docker, "version", "--format", "{{.Server.Os}}") }()

	// READY=1, and the API answers when it comes.
	notify.SetReadDeadline(time.Now().Add(2 * time.Minute))
	buf := make([]byte, 256)
	n, err := notify.Read(buf)
	if err != nil {
		t.Fatalf("no sd_notify message: %v\n%s", err, out.String())
	}
	if got := string(buf[:n]); got != "READY=1" {
		t.Errorf("first sd_notify message %q, want READY=1", got)
	}
	if r := s.run("lodge", "daemon", "status"); r.code != 0 {
		t.Errorf("READY=1 sent before the API answers: %s", r)
	}
	r := <-first
	if r.code != 0 || strings.TrimSpace(r.stdout) != "linux" {
		t.Fatalf("docker version through the activated socket: %s\n%s", r, out.String())
	}
	var after syscall.Stat_t
	if err := syscall.Stat(s.socket(), &after); err != nil || after.Ino != before.Ino {
		t.Errorf("lodged replaced the socket it was handed (inode %d, now %d, %v)", before.Ino, after.Ino, err)
	}

	// Once it answers, the service's main process only waits: it is
	// lodge-wait (C), not a Go lodged holding ~5 MiB for that.
	exe := ""
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if exe, _ = os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid)); filepath.Base(exe) == "lodge-wait" {
			break
		}
	}
	if filepath.Base(exe) != "lodge-wait" {
		t.Errorf("the main process waits as %q, want lodge-wait", exe)
	}

	// As systemctl stop does: SIGTERM to the service's main process.
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("lodged after SIGTERM: %v, want exit 0\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("lodged did not exit after lodge daemon stop:\n%s", out.String())
	}
	exited <- nil // for the deferred check
	notify.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := notify.Read(buf); err != nil || string(buf[:n]) != "STOPPING=1" {
		t.Errorf("sd_notify at stop: %q, %v; want STOPPING=1", buf[:max(n, 0)], err)
	}
	if err := syscall.Stat(s.socket(), &after); err != nil || after.Ino != before.Ino {
		t.Errorf("the activated socket is gone after lodged stopped (%v): the next connection could not start it", err)
	}
}

// TestIdleStop: with idle-stop in daemon.json, lodged stays while a
// container runs and stops by itself once it has been idle that long.
func TestIdleStop(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	docker := needDocker(t)
	s := newSession(t, u)
	cfg := filepath.Join(s.home, ".config", "lodge")
	os.MkdirAll(cfg, 0o700)
	if err := os.WriteFile(filepath.Join(cfg, "daemon.json"), []byte(`{"idle-stop": "2s"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	exec.Command("chown", "-R", u.name, filepath.Join(s.home, ".config")).Run()
	s.start()
	s.loadBusybox(docker)
	pid := s.pid()
	s.must(docker, "run", "-d", "--name", "idler", "busybox", "sleep", "6")
	time.Sleep(4 * time.Second) // twice idle-stop, with a container running
	if !processAlive(pid) {
		t.Fatalf("lodged stopped while a container ran")
	}
	s.must(docker, "wait", "idler")
	deadline := time.Now().Add(15 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("lodged still runs 15s after its last container exited, with idle-stop 2s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := s.run("lodge", "daemon", "status"); r.code == 0 {
		t.Errorf("lodge daemon status after idle stop: %s", r)
	}
	// Stopped, not crashed: the container is still there when it comes
	// back.
	s.start()
	if r := s.must(docker, "ps", "-a", "--format", "{{.Names}} {{.State}}"); strings.TrimSpace(r.stdout) != "idler exited" {
		t.Errorf("after idle stop and start: %s", r)
	}
	s.must(docker, "rm", "idler")
}

// activated is lodged run by systemd-socket-activate on the session's
// socket, as systemd runs lodged.service from lodged.socket.
type activated struct {
	cmd    *exec.Cmd
	out    *bytes.Buffer
	exited chan error
}

func (s *session) activate(t *testing.T) *activated {
	t.Helper()
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		skipOrFail(t, "systemd-socket-activate is not installed (Debian's systemd package; hack/setup-root.sh installs it)")
	}
	os.MkdirAll(s.runDir, 0o700)
	os.Chown(s.runDir, s.u.uid, s.u.gid)
	args := []string{"-l", s.socket()}
	for _, e := range s.env() {
		args = append(args, "-E", e)
	}
	a := &activated{out: &bytes.Buffer{}, exited: make(chan error, 1)}
	a.cmd = s.command(context.Background(), tool, append(args, filepath.Join(binDir, "lodged"))...)
	if in := s.inCgroup(); in != nil {
		in(a.cmd)
	}
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.started = true
	go func() { a.exited <- a.cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for !fileExists(s.socket()) {
		if time.Now().After(deadline) {
			t.Fatalf("systemd-socket-activate made no socket:\n%s", a.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return a
}

// stop is systemctl stop under KillMode=process: SIGTERM to the main
// process only, and wait for it.
func (a *activated) stop(t *testing.T) {
	t.Helper()
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(20 * time.Second):
		a.cmd.Process.Kill()
		t.Fatalf("lodged did not exit on SIGTERM:\n%s", a.out)
	}
}

// TestSocketActivationKeepsContainers: stopping the activated lodged as
// systemd does with KillMode=process leaves its containers running, and
// the lodged the next connection starts (through the keeper still
// holding the namespaces, handed the new socket) has them, not restarted.
func TestSocketActivationKeepsContainers(t *testing.T) {
	s := newSession(t, lookupUser(t, "LODGE_TEST_USER"))
	docker := needDocker(t)
	first := s.activate(t)
	s.loadBusybox(docker) // the first connection starts lodged
	s.must(docker, "run", "-d", "--name", "keep", "busybox", "sleep", "300")
	started := s.must(docker, "inspect", "-f", "{{.State.StartedAt}}", "keep").stdout
	first.stop(t)

	os.Remove(s.socket()) // systemd's socket outlives the service; this tool's does not
	second := s.activate(t)
	defer second.stop(t)
	var before, after syscall.Stat_t
	syscall.Stat(s.socket(), &before)
	if r := s.must(docker, "ps", "--format", "{{.Names}} {{.State}}"); r.stdout != "keep running\n" {
		t.Errorf("after stop and activation: %s\n%s", r, second.out)
	}
	if err := syscall.Stat(s.socket(), &after); err != nil || after.Ino != before.Ino {
		t.Errorf("the second lodged made its own socket instead of serving the one it was handed (%v)", err)
	}
	if again := s.must(docker, "inspect", "-f", "{{.State.StartedAt}}", "keep").stdout; again != started {
		t.Errorf("keep was restarted (started %s, now %s)", started, again)
	}
	if r := s.must(docker, "exec", "keep", "echo", "still here"); r.stdout != "still here\n" {
		t.Errorf("exec after re-activation: %s", r)
	}
	s.must(docker, "rm", "-f", "keep")
}

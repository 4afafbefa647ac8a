package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// basicWorkload is what a user does on any machine: load an image, run,
// a named volume, a published port, a user network reached by name,
// exec, logs, stop, rm. Every cell of the hostile-machine table must pass
// it.
func (s *session) basicWorkload(docker string, publish bool) {
	s.t.Helper()
	s.loadBusybox(docker)
	if r := s.must(docker, "run", "--rm", "busybox", "echo", "hello"); strings.TrimSpace(r.stdout) != "hello" {
		s.t.Fatalf("run: %s", r)
	}
	s.must(docker, "volume", "create", "data")
	s.must(docker, "run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo kept > /data/f")
	if r := s.must(docker, "run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/f"); strings.TrimSpace(r.stdout) != "kept" {
		s.t.Fatalf("volume: %s", r)
	}
	s.must(docker, "network", "create", "appnet")
	s.must(docker, "run", "-d", "--name", "srv", "--network", "appnet", "busybox", "sh", "-c", "echo up; exec nc -ll -p 5432 -e cat")
	if r := s.must(docker, "run", "--rm", "--network", "appnet", "busybox", "sh", "-c", "echo named | nc srv 5432"); strings.TrimSpace(r.stdout) != "named" {
		s.t.Fatalf("name resolution on a user network: %s", r)
	}
	if r := s.must(docker, "exec", "srv", "cat", "/proc/1/cmdline"); !strings.Contains(r.stdout, "nc") {
		s.t.Fatalf("exec: %s", r)
	}
	if publish {
		port := freePort(s.t)
		s.must(docker, "run", "-d", "--name", "web", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "busybox", "sh", "-c", "echo served > /index.html; exec httpd -f -p 80 -h /")
		if got := httpGet(s.t, fmt.Sprintf("http://127.0.0.1:%d/index.html", port)); strings.TrimSpace(got) != "served" {
			s.t.Fatalf("published port served %q", got)
		}
		s.must(docker, "rm", "-f", "web")
	}
	if r := s.must(docker, "logs", "srv"); strings.TrimSpace(r.stdout) != "up" {
		s.t.Fatalf("logs: %s", r)
	}
	s.must(docker, "stop", "-t", "1", "srv")
	s.must(docker, "rm", "srv")
	s.must(docker, "network", "rm", "appnet")
	s.must(docker, "volume", "rm", "data")
	if r := s.must(docker, "ps", "-aq"); strings.TrimSpace(r.stdout) != "" {
		s.t.Fatalf("containers left: %s", r)
	}
}

// TestNoXDGRuntimeDir is ssh without logind or `su -`: no XDG_RUNTIME_DIR.
// lodged and both CLIs use /tmp/lodge-$UID (the user's real uid, also in
// the stages inside the namespace, where the uid reads 0).
func TestNoXDGRuntimeDir(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	docker := needDocker(t)
	s := newSession(t, u)
	s.withoutXDG()
	s.start()
	if fi, err := os.Stat(filepath.Join(s.runDir, "lodge.sock")); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("no socket in %s: %v", s.runDir, err)
	}
	if _, err := os.Stat("/tmp/lodge-0"); err == nil && u.uid != 0 {
		t.Errorf("a stage used /tmp/lodge-0, its uid inside the namespace")
	}
	if r := s.must("lodge", "info"); !strings.Contains(r.stdout, "ID map") {
		t.Fatalf("lodge info without XDG_RUNTIME_DIR: %s", r)
	}
	s.basicWorkload(docker, true)
}

// plant runs a shell command as the other user (the one planting paths).
func plant(t *testing.T, other testUser, script string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	asUser(cmd, other)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("planting as %s: %v: %s", other.name, err, out)
	}
}

// TestPlantedPathsRefused: in a shared /tmp another user creates the
// victim's /tmp/lodge-$UID first (as a directory, a symlink, or with a
// socket in it), or owns the data root. lodged and the lodge CLI refuse
// each one, saying what to do, and nothing the CLI sends reaches the
// planted socket.
func TestPlantedPathsRefused(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	if os.Getuid() != 0 {
		skipOrFail(t, "needs root to act as another user")
	}
	other := lookupUser(t, "LODGE_TEST_OTHER_USER")
	runDir := fmt.Sprintf("/tmp/lodge-%d", u.uid)

	t.Run("directory", func(t *testing.T) {
		s := newSession(t, u)
		s.withoutXDG()
		plant(t, other, fmt.Sprintf("mkdir -m 0777 %s && chmod 0777 %s", runDir, runDir))
		r := s.run("lodge", "daemon", "start")
		if r.code == 0 || !strings.Contains(r.stderr, "owned by uid") || !strings.Contains(r.stderr, "XDG_RUNTIME_DIR") {
			t.Errorf("lodge daemon start in a planted dir: %s", r)
		}
		r = s.run("lodged")
		if r.code == 0 || !strings.Contains(r.stderr, "owned by uid") {
			t.Errorf("lodged in a planted dir: %s", r)
		}
		if r := s.run("lodge", "daemon", "stop"); r.code == 0 || !strings.Contains(r.stderr, "runtime dir") {
			t.Errorf("lodge daemon stop read a planted dir: %s", r)
		}
	})

	t.Run("symlink", func(t *testing.T) {
		s := newSession(t, u)
		s.withoutXDG()
		target := filepath.Join(s.base, "elsewhere")
		plant(t, other, fmt.Sprintf("ln -s %s %s", target, runDir))
		defer os.Remove(runDir)
		r := s.run("lodged")
		if r.code == 0 || !strings.Contains(r.stderr, "not a directory") {
			t.Errorf("lodged through a planted symlink: %s", r)
		}
	})

	t.Run("socket", func(t *testing.T) {
		s := newSession(t, u)
		s.withoutXDG()
		// The other user serves a socket where the victim's CLI looks,
		// and records every byte it receives.
		got := filepath.Join("/tmp", fmt.Sprintf("lodge-planted-%d.bytes", os.Getpid()))
		defer os.Remove(got)
		plant(t, other, fmt.Sprintf("mkdir -m 0777 %s && chmod 0777 %s && : > %s && chmod 0666 %s", runDir, runDir, got, got))
		srv := exec.Command("/usr/bin/python3", "-c", `
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(8)
import os; os.chmod(sys.argv[1], 0o777)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.settimeout(2)
    try:
        while True:
            b = c.recv(65536)
            if not b: break
            open(sys.argv[2], "ab").write(b)
    except Exception: pass
    c.close()
`, filepath.Join(runDir, "lodge.sock"), got)
		asUser(srv, other)
		out, _ := srv.StdoutPipe()
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { srv.Process.Kill(); srv.Wait() }()
		buf := make([]byte, 6)
		if _, err := out.Read(buf); err != nil {
			t.Fatal("planted server did not start:", err)
		}
		r := s.runWith(func(c *exec.Cmd) { c.Stdin = strings.NewReader("") }, "lodge", "login", "-u", "alice", "-p", "s3cret", "127.0.0.1:5999")
		if r.code == 0 || !strings.Contains(r.stderr, fmt.Sprintf("served by uid %d", other.uid)) || !strings.Contains(r.stderr, "nothing was sent") {
			t.Errorf("lodge login to a planted socket: %s", r)
		}
		if r := s.run("lodge", "ps"); r.code == 0 || !strings.Contains(r.stderr, "not by you") {
			t.Errorf("lodge ps to a planted socket: %s", r)
		}
		time.Sleep(200 * time.Millisecond)
		if b, _ := os.ReadFile(got); len(b) > 0 {
			t.Errorf("the planted socket received %d bytes: %q", len(b), b)
		}
	})

	t.Run("data root", func(t *testing.T) {
		s := newSession(t, u)
		planted := filepath.Join("/tmp", fmt.Sprintf("lodge-planted-data-%d", os.Getpid()))
		plant(t, other, fmt.Sprintf("mkdir -m 0777 %s && chmod 0777 %s", planted, planted))
		defer os.RemoveAll(planted)
		r := s.run("lodge", "daemon", "start", "--", "--data-root", planted)
		if r.code == 0 || !strings.Contains(r.stderr+r.stdout, "data root") || !strings.Contains(r.stderr+r.stdout, "--data-root") {
			t.Errorf("lodged with another user's data root: %s", r)
		}
		// A data root of the user's own below a directory the other user
		// owns could be swapped: refused too.
		plant(t, other, fmt.Sprintf("mkdir -m 0755 %s/inner", planted))
		r = s.run("lodged", "--data-root", planted+"/inner/mine")
		if r.code == 0 || !strings.Contains(r.stderr, fmt.Sprintf("belongs to uid %d", other.uid)) {
			t.Errorf("lodged below another user's directory: %s", r)
		}
	})
}

// TestBrokenNewuidmap: newuidmap is installed but has lost its setuid bit
// (copied without -p, a nosuid mount). lodged falls back to the single-id
// map as if it were missing, says why, and containers run.
func TestBrokenNewuidmap(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	if os.Getuid() != 0 {
		skipOrFail(t, "needs root to replace newuidmap in a private mount namespace")
	}
	docker := needDocker(t)
	nu, err := exec.LookPath("newuidmap")
	if err != nil {
		skipOrFail(t, "newuidmap is not installed")
	}
	s := newSession(t, u)
	broken := filepath.Join(s.base, "newuidmap")
	b, err := os.ReadFile(nu)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(broken, b, 0o755); err != nil {
		t.Fatal(err)
	}
	// lodged starts (and stays, detached) in a mount namespace where
	// newuidmap is the broken copy; the rest of the machine is untouched.
	env := strings.Join(quoteAll(s.env()), " ")
	script := fmt.Sprintf("mount --bind %s %s && exec setpriv --reuid %d --regid %d --clear-groups env -i %s %s daemon start",
		broken, nu, u.uid, u.gid, env, filepath.Join(binDir, "lodge"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Dir = s.home
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.runDir, "lodged.log"))
		t.Fatalf("lodge daemon start with a broken newuidmap: %v: %s\nlodged.log:\n%s", err, out, log)
	}
	s.started = true
	info := s.must("lodge", "info")
	if !strings.Contains(info.stdout, "neither setuid root nor given file capabilities") {
		t.Errorf("lodge info does not say why the single-id map: %s", info.stdout)
	}
	s.basicWorkload(docker, true)
}

func quoteAll(env []string) []string {
	out := make([]string, len(env))
	for i, e := range env {
		out[i] = "'" + strings.ReplaceAll(e, "'", `'\''`) + "'"
	}
	return out
}

// TestSingleIDUserRefused: with no subuid range only uid 0 exists in
// containers; --user 1000:1000 is refused at create, naming the cause and
// the fix, instead of failing inside the runtime ("chown /dev/stdout").
// The warning about the single-id map is in lodged's own log.
func TestSingleIDUserRefused(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_NOSUB_USER")
	docker := needDocker(t)
	s := newSession(t, u)
	s.start()
	s.loadBusybox(docker)
	r := s.run(docker, "run", "--rm", "--user", "1000:1000", "busybox", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "single-id map") || !strings.Contains(r.stderr, "subuid") {
		t.Errorf("--user 1000:1000 under a single-id map: %s", r)
	}
	if r := s.run(docker, "ps", "-aq"); strings.TrimSpace(r.stdout) != "" {
		t.Errorf("a refused create left a container: %s", r)
	}
	if r := s.must(docker, "run", "--rm", "--user", "0:0", "busybox", "id", "-u"); strings.TrimSpace(r.stdout) != "0" {
		t.Errorf("--user 0:0: %s", r)
	}
	log, _ := os.ReadFile(filepath.Join(s.runDir, "lodged.log"))
	if !strings.Contains(string(log), "single-id map") {
		t.Errorf("lodged.log does not warn about the single-id map:\n%s", log)
	}
	s.basicWorkload(docker, true)
	// lodge doctor names the cause and the administrator's fix.
	if r := s.must("lodge", "doctor"); !strings.Contains(r.stdout, "! subordinate ids: no /etc/subuid or /etc/subgid range for "+u.name) || !strings.Contains(r.stdout, "usermod --add-subuids") {
		t.Errorf("lodge doctor without a subuid range: %s", r)
	}
}

// TestFUSEHome stands in for an NFS home with root squash: the user's
// home (and so the default data root) is on a FUSE filesystem the user
// mounted (bindfs). lodged keeps its data on local disk instead
// ($TMPDIR here), says so in its log and info, and the basic workload
// passes; a --data-root named on FUSE is refused with the reason.
func TestFUSEHome(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	docker := needDocker(t)
	if _, err := exec.LookPath("bindfs"); err != nil {
		skipOrFail(t, "bindfs is not installed (hack/setup-root.sh installs it)")
	}
	s := newSession(t, u)
	real := filepath.Join(s.home, "real")
	fuseHome := filepath.Join(s.home, "fuse")
	local := filepath.Join(s.base, "scratch")
	for _, d := range []string{real, fuseHome, local} {
		s.must("mkdir", "-p", d)
	}
	s.must("bindfs", "--no-allow-other", real, fuseHome)
	t.Cleanup(func() { exec.Command("fusermount3", "-u", "-z", fuseHome).Run() })

	r := s.run("lodged", "--data-root", filepath.Join(fuseHome, "lodge"))
	if r.code == 0 || !strings.Contains(r.stderr, "is on FUSE") || !strings.Contains(r.stderr, "--allow-network-data-root") {
		t.Errorf("lodged --data-root on FUSE: %s", r)
	}

	s.data = filepath.Join(fuseHome, "share")
	s.extraEnv = []string{"TMPDIR=" + local}
	s.start()
	want := filepath.Join(local, fmt.Sprintf("lodge-%d", u.uid))
	info := s.must(docker, "info", "--format", "{{.DockerRootDir}}|{{json .Warnings}}")
	if !strings.HasPrefix(info.stdout, want+"|") || !strings.Contains(info.stdout, "is on FUSE") {
		t.Errorf("docker info on a FUSE home: %s", info)
	}
	log, _ := os.ReadFile(filepath.Join(s.runDir, "lodged.log"))
	if !strings.Contains(string(log), "is on FUSE") {
		t.Errorf("lodged.log does not say where the data went:\n%s", log)
	}
	s.basicWorkload(docker, false)
	if entries, _ := os.ReadDir(real); len(entries) > 0 {
		t.Errorf("lodge wrote to the FUSE home: %v", entries)
	}
}

// TestRemoveFreesSpace: on a full disk a user removes a container to make
// room; the space of its log and its layer must be free when rm returns,
// not once a monitor or a log reader lets go of the files.
func TestRemoveFreesSpace(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	docker := needDocker(t)
	s := newSession(t, u)
	s.start()
	s.loadBusybox(docker)
	const logBytes, fileBytes = 30 << 20, 60 << 20
	id := strings.TrimSpace(s.must(docker, "run", "-d", "busybox", "sh", "-c",
		fmt.Sprintf("yes 0123456789abcdef | head -c %d; head -c %d /dev/zero > /big", logBytes, fileBytes)).stdout)
	if r := s.must(docker, "wait", id); strings.TrimSpace(r.stdout) != "0" {
		t.Fatalf("wait: %s", r)
	}
	// A reader still following the log holds it open, as a monitor that
	// has not exited yet would.
	follow := s.command(context.Background(), docker, "logs", "-f", id)
	follow.Stdout, follow.Stderr = nil, nil
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { follow.Process.Kill(); follow.Wait() }()
	time.Sleep(300 * time.Millisecond)
	before := freeBytes(t, s.data)
	s.must(docker, "rm", id)
	freed := freeBytes(t, s.data) - before
	if want := int64(logBytes + fileBytes); freed < want*8/10 {
		t.Errorf("rm returned with %d MiB freed, want at least %d MiB (the log and the layer)", freed>>20, want*8/10>>20)
	}
}

func freeBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

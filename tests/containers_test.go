package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// containerSession is a started lodged with the busybox image loaded.
func containerSession(t *testing.T) (*session, string) {
	t.Helper()
	docker := needDocker(t)
	s := newSession(t, lookupUser(t, "LODGE_TEST_USER"))
	s.start()
	s.loadBusybox(docker)
	return s, docker
}

func TestRunForeground(t *testing.T) {
	s, docker := containerSession(t)

	r := s.must(docker, "run", "--rm", "busybox", "echo", "hello")
	if r.stdout != "hello\n" {
		t.Errorf("docker run echo: %q", r.stdout)
	}
	r = s.run(docker, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
	if r.code != 3 || r.stdout != "out\n" || !strings.Contains(r.stderr, "err\n") {
		t.Errorf("exit code and streams: %s", r)
	}
	// stdin reaches the container and its end ends the container's input.
	cmd := s.command(t.Context(), docker, "run", "--rm", "-i", "busybox", "sh", "-c", "read a; echo got:$a; cat; echo end")
	cmd.Stdin = strings.NewReader("one\ntwo\n")
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "got:one\ntwo\nend\n" {
		t.Errorf("docker run -i: %v %q", err, out)
	}
	if ps := s.must(docker, "ps", "-aq"); strings.TrimSpace(ps.stdout) != "" {
		t.Errorf("--rm containers left: %q", ps.stdout)
	}
	r = s.run(docker, "run", "--rm", "busybox", "no-such-command")
	if r.code != 127 || !strings.Contains(r.stderr, "no-such-command") {
		t.Errorf("missing command: %s", r)
	}
	r = s.run(docker, "run", "--rm", "no-such-image:1")
	if r.code != 125 {
		t.Errorf("missing image: %s", r)
	}
	r = s.run(docker, "run", "--rm", "--cap-add", "NOT_A_CAP", "busybox", "true")
	if r.code != 125 || !strings.Contains(strings.ToLower(r.stderr), "capability") {
		t.Errorf("unknown capability: %s", r)
	}
}

func TestContainerLifecycle(t *testing.T) {
	s, docker := containerSession(t)

	id := strings.TrimSpace(s.must(docker, "run", "-d", "--name", "web", "-e", "A=1", "-w", "/tmp", "-u", "1000:1000",
		"busybox", "sh", "-c", "echo started; echo A=$A; id -u; pwd; trap 'echo got-hup' HUP; while true; do sleep 0.1; done").stdout)
	if len(id) != 64 {
		t.Fatalf("docker run -d printed %q", id)
	}
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(s.run(docker, "logs", "web").stdout, "/tmp") })
	logs := s.must(docker, "logs", "web").stdout
	if logs != "started\nA=1\n1000\n/tmp\n" {
		t.Errorf("logs: %q", logs)
	}
	if r := s.must(docker, "logs", "--tail", "1", "--timestamps", "web"); !strings.HasSuffix(r.stdout, "Z /tmp\n") || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("logs --tail 1 --timestamps: %q", r.stdout)
	}
	// No log attributes: Docker's details are a lone space before each line.
	if r := s.must(docker, "logs", "--details", "web"); r.stdout != " started\n A=1\n 1000\n /tmp\n" {
		t.Errorf("logs --details: %q", r.stdout)
	}
	if r := s.must(docker, "logs", "--details", "-t", "--tail", "1", "web"); !strings.HasSuffix(r.stdout, "Z  /tmp\n") {
		t.Errorf("logs --details -t: %q", r.stdout)
	}
	ps := s.must(docker, "ps", "--format", "{{.ID}} {{.Names}} {{.Status}}").stdout
	if !strings.HasPrefix(ps, id[:12]+" web Up ") {
		t.Errorf("docker ps: %q", ps)
	}
	if q := strings.TrimSpace(s.must(docker, "ps", "-q").stdout); q != id[:12] {
		t.Errorf("docker ps -q: %q", q)
	}
	insp := s.must(docker, "inspect", "--format", "{{.State.Status}} {{.State.Running}} {{.Name}} {{.Config.WorkingDir}} {{.Config.User}} {{.Config.Image}}", "web").stdout
	if insp != "running true /web /tmp 1000:1000 busybox\n" {
		t.Errorf("inspect: %q", insp)
	}
	if top := s.must(docker, "top", "web").stdout; !strings.Contains(top, "sleep") && !strings.Contains(top, "sh -c") {
		t.Errorf("top: %q", top)
	}

	s.must(docker, "kill", "-s", "HUP", "web")
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(s.run(docker, "logs", "web").stdout, "got-hup") })

	start := time.Now()
	s.must(docker, "stop", "-t", "1", "web")
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("stop -t 1 took %s", d)
	}
	exited := s.must(docker, "ps", "-a", "--filter", "status=exited", "--format", "{{.Names}} {{.Status}}").stdout
	if !strings.HasPrefix(exited, "web Exited (137)") {
		t.Errorf("ps --filter status=exited: %q", exited)
	}
	s.must(docker, "start", "web")
	if st := s.must(docker, "inspect", "-f", "{{.State.Status}}", "web").stdout; st != "running\n" {
		t.Errorf("after start: %q", st)
	}
	s.must(docker, "restart", "-t", "1", "web")
	s.must(docker, "rename", "web", "www")
	if r := s.run(docker, "inspect", "web"); r.code == 0 {
		t.Error("old name still answers after rename")
	}
	// wait returns the exit code of the next exit.
	go func() {
		time.Sleep(300 * time.Millisecond)
		s.run(docker, "kill", "www")
	}()
	if w := s.must(docker, "wait", "www"); strings.TrimSpace(w.stdout) != "137" {
		t.Errorf("docker wait: %q", w.stdout)
	}
	s.must(docker, "start", "www")
	if r := s.run(docker, "rm", "www"); r.code == 0 || !strings.Contains(r.stderr, "stop the container before removing or force remove") {
		t.Errorf("rm of a running container: %s", r)
	}
	s.must(docker, "rm", "-f", "www")
	if r := s.run(docker, "inspect", "www"); r.code == 0 || !strings.Contains(r.stderr, "No such") {
		t.Errorf("inspect after rm: %s", r)
	}

	s.must(docker, "create", "--name", "c1", "busybox", "true")
	s.must(docker, "run", "--name", "c2", "busybox", "true")
	if r := s.run(docker, "create", "--name", "c1", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "is already in use") {
		t.Errorf("duplicate name: %s", r)
	}
	pr := s.must(docker, "container", "prune", "-f").stdout
	if !strings.Contains(pr, "Total reclaimed space") {
		t.Errorf("prune: %q", pr)
	}
	if ps := strings.TrimSpace(s.must(docker, "ps", "-aq").stdout); ps != "" {
		t.Errorf("after prune: %q", ps)
	}
}

func TestBindMountOwnership(t *testing.T) {
	s, docker := containerSession(t)
	work := filepath.Join(s.base, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(work, s.u.uid, s.u.gid)
	s.must(docker, "run", "--rm", "-v", work+":/work", "-w", "/work", "busybox", "touch", "made-in-container")
	fi, err := os.Stat(filepath.Join(work, "made-in-container"))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != s.u.uid || int(st.Gid) != s.u.gid {
		t.Errorf("file made by the container's root is owned by %d:%d on the host, want %d:%d", st.Uid, st.Gid, s.u.uid, s.u.gid)
	}
	r := s.run(docker, "run", "--rm", "-v", work+":/work:ro", "busybox", "touch", "/work/nope")
	if r.code == 0 {
		t.Error("write to a read-only bind mount succeeded")
	}

	// --userns=keep-id (lodge's flag: the docker CLI refuses any mode but
	// host): the user's ids are the same inside, the image's files are
	// still root's, and what the user's uid writes is the user's.
	want := fmt.Sprintf("%d:%d\n", s.u.uid, s.u.gid)
	if r := s.must("lodge", "run", "--rm", "--userns", "keep-id", "busybox", "sh", "-c", "echo $(id -u):$(id -g)"); r.stdout != want {
		t.Errorf("id under keep-id: %q, want %q", r.stdout, want)
	}
	if r := s.must("lodge", "run", "--rm", "--userns", "keep-id", "busybox", "stat", "-c", "%u:%g", "/bin/busybox"); r.stdout != "0:0\n" {
		t.Errorf("image files under keep-id owned by %q, want 0:0", r.stdout)
	}
	// The user's host files look like the user's own inside.
	if r := s.must("lodge", "run", "--rm", "--userns", "keep-id", "-v", work+":/work", "busybox", "sh", "-c", "touch /work/kept && stat -c %u:%g /work/made-in-container"); r.stdout != want {
		t.Errorf("a host file of the user's is owned by %q inside, want %q", r.stdout, want)
	}
	fi, err = os.Stat(filepath.Join(work, "kept"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != s.u.uid || int(st.Gid) != s.u.gid {
		t.Errorf("file made under keep-id is owned by %d:%d on the host, want %d:%d", st.Uid, st.Gid, s.u.uid, s.u.gid)
	}
}

// TestContainersSurviveDaemonKill: kill -9 of lodged leaves running
// containers running; the next lodged re-adopts them.
func TestContainersSurviveDaemonKill(t *testing.T) {
	s, docker := containerSession(t)
	for i := 0; i < 3; i++ {
		s.must(docker, "run", "-d", "--name", fmt.Sprintf("c%d", i), "busybox", "sh", "-c", "echo up; while true; do sleep 0.2; done")
	}
	s.must(docker, "run", "-d", "--name", "short", "busybox", "sh", "-c", "sleep 2; exit 7")
	pid := s.pid()
	syscall.Kill(pid, syscall.SIGKILL)
	waitGone(t, []int{pid}, 10*time.Second)
	time.Sleep(2500 * time.Millisecond) // "short" ends while no daemon runs
	s.start()
	ps := s.must(docker, "ps", "--format", "{{.Names}}").stdout
	for i := 0; i < 3; i++ {
		if !strings.Contains(ps, fmt.Sprintf("c%d", i)) {
			t.Errorf("c%d not running after the daemon restart: %q", i, ps)
		}
	}
	if code := s.must(docker, "inspect", "-f", "{{.State.ExitCode}} {{.State.Status}}", "short").stdout; code != "7 exited\n" {
		t.Errorf("exit recorded while no daemon ran: %q", code)
	}
	if logs := s.must(docker, "logs", "c1").stdout; logs != "up\n" {
		t.Errorf("logs after restart: %q", logs)
	}
	s.must(docker, "stop", "-t", "1", "c0")
	s.must(docker, "rm", "-f", "c1", "c2")
}

func TestRestartPolicy(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 1")
	waitFor(t, 20*time.Second, func() bool {
		out := s.run(docker, "inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "flaky").stdout
		return out == "2 exited\n"
	})
	if logs := s.must(docker, "logs", "flaky").stdout; logs != "run\nrun\nrun\n" {
		t.Errorf("three runs expected: %q", logs)
	}
}

func waitFor(t *testing.T, d time.Duration, ok func() bool) {
	t.Helper()
	waitForOr(t, d, ok, "the condition")
}

// --init puts a small init at pid 1: signals reach a command that would
// ignore them as pid 1, orphans are reaped, and the exit code is the
// command's.
func TestInit(t *testing.T) {
	s, docker := containerSession(t)
	if r := s.must(docker, "run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline"); !strings.HasPrefix(r.stdout, "/sbin/docker-init\x00--\x00cat\x00") {
		t.Errorf("pid 1 with --init: %q", r.stdout)
	}
	if r := s.run(docker, "run", "--rm", "--init", "busybox", "sh", "-c", "exit 3"); r.code != 3 {
		t.Errorf("exit code through the init: %s", r)
	}
	// sleep as pid 1 ignores SIGTERM and stop would wait out its timeout;
	// under the init it gets the signal and ends at once.
	s.must(docker, "run", "-d", "--name", "sleeper", "--init", "busybox", "sleep", "1000")
	// Until the init has set up its handlers (it has once it started the
	// command), a SIGTERM to pid 1 is dropped by the kernel, as for any
	// pid 1 without a handler: docker start returns before that.
	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(s.must(docker, "exec", "sleeper", "ps", "-o", "comm").stdout, "sleep")
	})
	start := time.Now()
	s.must(docker, "stop", "-t", "30", "sleeper")
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("stop took %s: SIGTERM did not reach the command", d)
	}
	if code := s.must(docker, "inspect", "-f", "{{.State.ExitCode}}", "sleeper").stdout; code != "143\n" {
		t.Errorf("exit code after SIGTERM: %q", code)
	}
	// Orphans re-parented to pid 1 are reaped: no zombies pile up.
	s.must(docker, "run", "-d", "--name", "orphans", "--init", "busybox", "sh", "-c", "(sleep 0.1 &); (sleep 0.1 &); sleep 1000")
	// Only `sleep 1000` is left once the short sleeps end, and nothing
	// lingers as a zombie (Z).
	waitFor(t, 10*time.Second, func() bool {
		out := s.must(docker, "exec", "orphans", "ps", "-o", "stat,comm").stdout
		return strings.Count(out, "sleep") == 1 && !strings.Contains(out, "\nZ")
	})
	s.must(docker, "rm", "-f", "sleeper", "orphans")
}

// --runtime runc runs a container on the installed runc binary instead of
// lodge's embedded libcontainer: output, exit codes, exec, a tty, stop and
// docker info's list all work the same.
func TestOCIRuntimeBinary(t *testing.T) {
	s, docker := containerSession(t)
	if info := s.must(docker, "info", "--format", "{{json .Runtimes}} {{.DefaultRuntime}}").stdout; !strings.Contains(info, `"runc"`) || !strings.HasSuffix(info, " lodge\n") {
		t.Fatalf("docker info runtimes: %q (runc is installed by the test setup)", info)
	}
	if r := s.run(docker, "run", "--rm", "--runtime", "runc", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"); r.code != 3 || r.stdout != "out\n" || !strings.Contains(r.stderr, "err") {
		t.Errorf("run on runc: %s", r)
	}
	if r := s.run(docker, "run", "--rm", "--runtime", "runc", "busybox", "no-such-command"); r.code != 127 {
		t.Errorf("missing command on runc: %s", r)
	}
	if r := s.run(docker, "run", "--rm", "--runtime", "nope", "busybox", "true"); r.code != 125 || !strings.Contains(r.stderr, "unknown or invalid runtime name: nope") {
		t.Errorf("unknown runtime: %s", r)
	}
	s.must(docker, "run", "-d", "--name", "onrunc", "--runtime", "runc", "busybox", "sleep", "1000")
	if rt := s.must(docker, "inspect", "-f", "{{.HostConfig.Runtime}}", "onrunc").stdout; rt != "runc\n" {
		t.Errorf("HostConfig.Runtime %q", rt)
	}
	if r := s.must(docker, "exec", "-u", "1000", "onrunc", "id", "-u"); r.stdout != "1000\n" {
		t.Errorf("exec on runc: %q", r.stdout)
	}
	if r := s.run(docker, "exec", "onrunc", "sh", "-c", "exit 4"); r.code != 4 {
		t.Errorf("exec exit code on runc: %s", r)
	}
	if r := s.run(docker, "exec", "onrunc", "no-such-command"); r.code != 126 { // Docker's code for an exec that cannot start
		t.Errorf("exec of a missing command on runc: %s", r)
	}
	// A tty through the runtime's console socket, sized from the start.
	if r := s.must(docker, "exec", "-t", "onrunc", "busybox", "tty"); !strings.HasPrefix(r.stdout, "/dev/pts/") {
		t.Errorf("exec -t on runc: %q", r.stdout)
	}
	if r := s.must("lodge", "run", "--rm", "-t", "--runtime", "runc", "busybox", "busybox", "tty"); !strings.HasPrefix(r.stdout, "/dev/pts/") {
		t.Errorf("run -t on runc: %q", r.stdout)
	}
	s.must(docker, "stop", "-t", "1", "onrunc")
	if code := s.must(docker, "inspect", "-f", "{{.State.ExitCode}}", "onrunc").stdout; code != "137\n" {
		t.Errorf("exit code after stop on runc: %q", code)
	}
	s.must(docker, "start", "onrunc")
	if st := s.must(docker, "inspect", "-f", "{{.State.Running}}", "onrunc").stdout; st != "true\n" {
		t.Errorf("restart on runc: running=%q", st)
	}
	s.must(docker, "rm", "-f", "onrunc")
}

// --ulimit reaches the container's processes, its execs too; without it a
// container gets the user's own open-file limit.
func TestUlimitReachesContainer(t *testing.T) {
	s, docker := containerSession(t)
	if r := s.must(docker, "run", "--rm", "--ulimit", "nofile=100:200", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn"); r.stdout != "100\n200\n" {
		t.Errorf("ulimit -n / -Hn in a --ulimit nofile=100:200 container: %q", r.stdout)
	}
	s.must(docker, "run", "-d", "--name", "ul", "--ulimit", "nproc=300:400", "busybox", "sleep", "1000")
	if r := s.must(docker, "exec", "ul", "sh", "-c", "ulimit -u; ulimit -Hu"); r.stdout != "300\n400\n" {
		t.Errorf("ulimit -u / -Hu in an exec of a --ulimit nproc=300:400 container: %q", r.stdout)
	}
	s.must(docker, "rm", "-f", "ul")
}

package tests

import (
	"bytes"
	"context"
	"fmt"
	"github.com/lodge-containers/lodge/internal/buildbin"
	"github.com/lodge-containers/lodge/internal/testgate"
	"github.com/lodge-containers/lodge/proc"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binDir holds the lodged and lodge built for this run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lodge-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755)
	if err := buildbin.Build("..", dir, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// skipOrFail skips locally with the reason, and fails under
// LODGE_TEST_STRICT (CI).
func skipOrFail(t *testing.T, format string, a ...any) {
	t.Helper()
	testgate.SkipOrFail(t, format, a...)
}

// testUser is the unprivileged account a test runs lodged and clients as.
type testUser struct {
	name     string
	uid, gid int
}

// lookupUser returns the user named by env (when the tests run as root),
// or the current user.
func lookupUser(t *testing.T, env string) testUser {
	t.Helper()
	name := os.Getenv(env)
	if os.Getuid() != 0 {
		if name != "" {
			if cur, _ := user.Current(); cur.Username != name {
				skipOrFail(t, "%s=%s but the tests run as %s, not root", env, name, cur.Username)
			}
		}
		u, _ := user.Current()
		return testUser{name: u.Username, uid: os.Getuid(), gid: os.Getgid()}
	}
	if name == "" {
		skipOrFail(t, "running as root: set %s to an unprivileged user (hack/test.sh does)", env)
	}
	u, err := user.Lookup(name)
	if err != nil {
		skipOrFail(t, "%s: %v", env, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return testUser{name: u.Username, uid: uid, gid: gid}
}

// session is one lodged of one user, with its own runtime dir, data root
// and HOME, all removed at the end of the test.
type session struct {
	t       *testing.T
	u       testUser
	base    string
	home    string
	xdgRun  string
	runDir  string
	data    string
	started bool
	// cgroup is the session's own delegated cgroup v2 directory ("" when
	// the user has none, or the test wants lodged without one).
	cgroup string
	// noXDG leaves XDG_RUNTIME_DIR out of the user's environment (ssh
	// without logind, su -): lodge falls back to /tmp/lodge-$UID.
	noXDG bool
	// extraEnv is added to the user's environment.
	extraEnv []string
	// autostart lets lodge commands start lodged on their own; off in
	// tests unless they test it, so no command (a clean-up's lodge ps
	// among them) leaves a daemon the test did not start.
	autostart bool
}

func newSession(t *testing.T, u testUser) *session {
	t.Helper()
	base, err := os.MkdirTemp("", "lodge-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	s := &session{t: t, u: u, base: base,
		home:   filepath.Join(base, "home"),
		xdgRun: filepath.Join(base, "run"),
		data:   filepath.Join(base, "data")}
	s.runDir = filepath.Join(s.xdgRun, "lodge")
	for _, d := range []string{base, s.home, s.xdgRun, s.data} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, u.uid, u.gid); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(s.cleanup)
	if os.Getuid() == 0 && delegatedCgroup(u) != "" {
		s.useCgroup()
	}
	return s
}

func (s *session) socket() string { return filepath.Join(s.runDir, "lodge.sock") }

// env is the environment the user's commands get.
func (s *session) env() []string {
	env := []string{
		"HOME=" + s.home,
		"USER=" + s.u.name,
		"LOGNAME=" + s.u.name,
		"PATH=" + binDir + ":/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
		"XDG_DATA_HOME=" + s.data,
		"XDG_CONFIG_HOME=" + filepath.Join(s.home, ".config"),
		"DOCKER_HOST=unix://" + s.socket(),
		"DOCKER_CONFIG=" + filepath.Join(s.home, ".docker"),
	}
	if !s.noXDG {
		env = append(env, "XDG_RUNTIME_DIR="+s.xdgRun)
	}
	if !s.autostart {
		env = append(env, "LODGE_NO_AUTOSTART=1")
	}
	return append(env, s.extraEnv...)
}

// withoutXDG makes the session's user run with no XDG_RUNTIME_DIR, so
// lodge uses /tmp/lodge-$UID; whatever a test before left there is
// removed first and at the end.
func (s *session) withoutXDG() {
	s.noXDG = true
	s.runDir = fmt.Sprintf("/tmp/lodge-%d", s.u.uid)
	os.RemoveAll(s.runDir)
}

// command builds a command that runs as the session's user.
func (s *session) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	// exec looks names up in the test's PATH, not the user's: ours first.
	if !strings.Contains(name, "/") {
		if p := filepath.Join(binDir, name); fileExists(p) {
			name = p
		}
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = s.env()
	cmd.Dir = s.home
	asUser(cmd, s.u)
	return cmd
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func asUser(cmd *exec.Cmd, u testUser) {
	if os.Getuid() == 0 && u.uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}}
	}
}

// result is what a command printed and how it ended.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs a command as the user, with a time limit.
func (s *session) run(name string, args ...string) result {
	s.t.Helper()
	return s.runWith(nil, name, args...)
}

// runWith is run with a last change to the command before it starts.
func (s *session) runWith(mod func(*exec.Cmd), name string, args ...string) result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := s.command(ctx, name, args...)
	if mod != nil {
		mod(cmd)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			s.t.Fatalf("%s %v: %v", name, args, err)
		}
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// must runs a command and fails the test unless it exits 0.
func (s *session) must(name string, args ...string) result {
	s.t.Helper()
	r := s.run(name, args...)
	if r.code != 0 {
		s.t.Fatalf("%s %s: %s", name, strings.Join(args, " "), r)
	}
	return r
}

// start starts lodged through `lodge daemon start`, which waits for the
// socket to answer.
func (s *session) start(lodgedArgs ...string) {
	s.t.Helper()
	args := []string{"daemon", "start"}
	if len(lodgedArgs) > 0 {
		args = append(append(args, "--"), lodgedArgs...)
	}
	// lodged starts in the session's delegated cgroup, as a user's
	// daemon starts in the cgroup systemd delegates to the user.
	r := s.runWith(s.inCgroup(), "lodge", args...)
	if r.code != 0 {
		log, _ := os.ReadFile(filepath.Join(s.runDir, "lodged.log"))
		s.t.Fatalf("lodge daemon start: %s\nlodged.log:\n%s", r, log)
	}
	s.started = true
}

// pid is the host-side lodged's pid.
func (s *session) pid() int {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.runDir, "lodged.pid"))
	if err != nil {
		s.t.Fatalf("no pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		s.t.Fatal(err)
	}
	return pid
}

// childPID is the pid of the first process inside lodged's namespace.
func (s *session) childPID() int {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.runDir, "rootlesskit", "child_pid"))
	if err != nil {
		s.t.Fatalf("no child_pid: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// pidFile reads a pid file in the runtime dir, 0 when absent.
func (s *session) pidFile(name string) int {
	b, err := os.ReadFile(filepath.Join(s.runDir, name))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// cleanup stops the daemon, checks that the keeper (which holds the
// namespaces) goes away by itself once nothing runs, that no process of
// either is left, and removes the session's directories.
func (s *session) cleanup() {
	if s.started {
		var pids []int
		for _, f := range []string{"lodged.pid", "keeper.pid"} {
			if pid := s.pidFile(f); pid > 0 {
				pids = append(pids, pid)
			}
		}
		if s.t.Failed() {
			// What the daemon said is often why: its log's end goes
			// with the failure.
			if log, err := os.ReadFile(filepath.Join(s.runDir, "lodged.log")); err == nil {
				lines := strings.Split(strings.TrimRight(string(log), "\n"), "\n")
				s.t.Logf("the end of lodged.log:\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
			}
			// A test that stopped half-way leaves containers running, and
			// they (rightly) outlive the daemon: remove them first so the
			// check below reports only real leftovers.
			if ids := strings.Fields(s.run("lodge", "ps", "-aq").stdout); len(ids) > 0 {
				s.run("lodge", append([]string{"rm", "-f"}, ids...)...)
			}
		}
		pids = append(pids, descendants(pids)...)
		s.run("lodge", "daemon", "stop", "--timeout", "15s")
		deadline := time.Now().Add(15 * time.Second)
		for _, pid := range pids {
			for processAlive(pid) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if processAlive(pid) {
				s.t.Errorf("lodged process %d still running after stop", pid)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	s.removeCgroup()
	os.RemoveAll(s.base)
	if s.noXDG {
		os.RemoveAll(s.runDir)
	}
}

func processAlive(pid int) bool { return proc.Alive(pid) }

func descendants(pids []int) []int { return proc.Descendants(pids...) }

func waitGone(t *testing.T, pids []int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		alive := false
		for _, p := range pids {
			if processAlive(p) {
				alive = true
			}
		}
		if !alive {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("processes %v still alive after %s", pids, d)
}

// needDocker returns the docker CLI's path.
func needDocker(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("docker")
	if err != nil {
		if _, err := os.Stat("/usr/local/bin/docker"); err == nil {
			return "/usr/local/bin/docker"
		}
		skipOrFail(t, "the docker CLI is not installed")
	}
	return p
}

// clientBinary is a client hack/clients.sh builds (docker-buildx,
// docker-compose) from LODGE_CLIENTS_DIR; a test that needs it cannot
// run without it (and fails in CI).
func clientBinary(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("LODGE_CLIENTS_DIR")
	if dir == "" {
		skipOrFail(t, "LODGE_CLIENTS_DIR is not set: hack/test.sh builds buildx and compose v2 there (hack/clients.sh)")
	}
	p := filepath.Join(dir, "bin", name)
	if !fileExists(p) {
		skipOrFail(t, "%s is not built: run hack/clients.sh %s", p, dir)
	}
	return p
}

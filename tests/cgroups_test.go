package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cgroupSession is a started lodged in a delegated cgroup, with busybox.
func cgroupSession(t *testing.T, lodgedArgs ...string) (*session, string) {
	t.Helper()
	docker := needDocker(t)
	s := requireCgroupSession(t, lodgedArgs...)
	s.loadBusybox(docker)
	return s, docker
}

// cgroupOf is the v2 cgroup of a process, as a directory.
func cgroupOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p
		}
	}
	t.Fatalf("process %d has no v2 cgroup", pid)
	return ""
}

// v2Path is a cgroup directory as its path within the v2 hierarchy.
func v2Path(dir string) string {
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if p, ok := strings.CutPrefix(dir, root); ok {
			return p
		}
	}
	return dir
}

func pidsIn(t *testing.T, dir string) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		n, _ := strconv.Atoi(f)
		pids = append(pids, n)
	}
	return pids
}

// waitPids waits (a while) until the cgroup at dir holds n processes, and
// returns those it holds.
func waitPids(t *testing.T, dir string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	pids := pidsIn(t, dir)
	// Until exactly n: a shell's short-lived subshell (the one that
	// double-forks) is counted while it lives.
	for len(pids) != n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		pids = pidsIn(t, dir)
	}
	return pids
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestCgroupPlacementPauseAndKill: lodged sits in a leaf of its delegated
// cgroup, each container in a cgroup of its own that holds every one of
// its processes and not its monitor; pause freezes it, exec into it is
// refused, and rm -f leaves nothing of it, a daemonised child included.
func TestCgroupPlacementPauseAndKill(t *testing.T) {
	s, docker := cgroupSession(t)

	if got, want := cgroupOf(t, s.pid()), v2Path(filepath.Join(s.cgroup, "lodged")); got != want {
		t.Errorf("lodged is in %s, want its leaf %s", got, want)
	}
	if pids := pidsIn(t, s.cgroup); len(pids) != 0 {
		t.Errorf("processes left in the delegated cgroup itself: %v", pids)
	}
	// The child double-forks away from its parent and a new session.
	id := strings.TrimSpace(s.must(docker, "run", "-d", "--name", "w1", "busybox", "sh", "-c", "(setsid sleep 4242 &); exec sleep 4343").stdout)
	dir := filepath.Join(s.cgroup, "containers", id)
	pids := waitPids(t, dir, 2)
	if len(pids) != 2 {
		t.Fatalf("the container's cgroup holds %v, want its init and the daemonised sleep", pids)
	}
	initPid, _ := strconv.Atoi(strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.State.Pid}}", "w1").stdout))
	if got := cgroupOf(t, initPid); got != v2Path(dir) {
		t.Errorf("the container's init is in %s, want %s", got, v2Path(dir))
	}
	mon := pidsIn(t, filepath.Join(s.cgroup, "monitors"))
	if len(mon) != 1 {
		t.Errorf("monitors leaf holds %v, want the one monitor", mon)
	}

	s.must(docker, "pause", "w1")
	if ev := readTrim(t, filepath.Join(dir, "cgroup.events")); !strings.Contains(ev, "frozen 1") {
		t.Errorf("paused, but cgroup.events says %q", ev)
	}
	if st := s.must(docker, "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "w1").stdout; st != "paused true\n" {
		t.Errorf("inspect of a paused container: %q", st)
	}
	if ps := s.must(docker, "ps", "--filter", "name=w1", "--format", "{{.Status}}").stdout; !strings.Contains(ps, "(Paused)") {
		t.Errorf("docker ps of a paused container: %q", ps)
	}
	if r := s.run(docker, "exec", "w1", "true"); r.code == 0 || !strings.Contains(r.stderr, "is paused, unpause the container before exec") {
		t.Errorf("exec into a paused container: %s", r)
	}
	if r := s.run(docker, "pause", "w1"); r.code == 0 || !strings.Contains(r.stderr, "already paused") {
		t.Errorf("pausing twice: %s", r)
	}
	s.must(docker, "unpause", "w1")
	if ev := readTrim(t, filepath.Join(dir, "cgroup.events")); !strings.Contains(ev, "frozen 0") {
		t.Errorf("unpaused, but cgroup.events says %q", ev)
	}
	if st := s.must(docker, "inspect", "-f", "{{.State.Status}}", "w1").stdout; st != "running\n" {
		t.Errorf("inspect after unpause: %q", st)
	}
	// docker events tells of it.
	until := strconv.FormatInt(time.Now().Unix()+1, 10)
	r := s.must(docker, "events", "--since", "0", "--until", until, "--filter", "container=w1", "--format", "{{.Action}}")
	if got := strings.Fields(r.stdout); strings.Join(got, " ") != "create start pause unpause" {
		t.Errorf("docker events: %q", got)
	}
	// An exec'd process joins the container's cgroup.
	s.must(docker, "exec", "-d", "w1", "sleep", "4444")
	pids = waitPids(t, dir, 3)
	if len(pids) != 3 {
		t.Errorf("after exec the container's cgroup holds %v, want 3 processes", pids)
	}

	// A paused container is removed as well: cgroup.kill reaches frozen
	// processes.
	s.must(docker, "pause", "w1")
	s.must(docker, "rm", "-f", "w1")
	waitGone(t, pids, 10*time.Second)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the container's cgroup is left: %v", err)
	}
}

// TestCgroupStopKillsEverything: stop ends a container whose daemonised
// child ignores SIGTERM, through its cgroup.
func TestCgroupStopKillsEverything(t *testing.T) {
	s, docker := cgroupSession(t)
	id := strings.TrimSpace(s.must(docker, "run", "-d", "busybox", "sh", "-c", "(setsid sh -c 'trap \"\" TERM; sleep 4545' &); exec sleep 4646").stdout)
	dir := filepath.Join(s.cgroup, "containers", id)
	pids := waitPids(t, dir, 2)
	s.must(docker, "stop", "-t", "1", id)
	waitGone(t, pids, 10*time.Second)
	if st := s.must(docker, "inspect", "-f", "{{.State.Status}}", id).stdout; st != "exited\n" {
		t.Errorf("after stop: %q", st)
	}
	// Neither a stopped container nor one that failed to start keeps a cgroup.
	if r := s.run(docker, "run", "busybox", "no-such-command"); r.code != 127 {
		t.Errorf("a failed start: %s", r)
	}
	ents, _ := os.ReadDir(filepath.Join(s.cgroup, "containers"))
	for _, e := range ents {
		if e.IsDir() {
			t.Errorf("cgroup left behind: %s", e.Name())
		}
	}
}

// TestCgroupLimits: on this machine (a hybrid one, no controller in the v2
// hierarchy) a limit is refused with the missing controller named and the
// way to get it; --cgroup-limits=warn runs the container with a warning.
// Where the controller is delegated, the limit lands in the cgroup.
func TestCgroupLimits(t *testing.T) {
	s, docker := cgroupSession(t)
	delegated := strings.Fields(readTrim(t, filepath.Join(s.cgroup, "cgroup.controllers")))
	hasMemory := false
	for _, c := range delegated {
		hasMemory = hasMemory || c == "memory"
	}
	if hasMemory {
		id := strings.TrimSpace(s.must(docker, "run", "-d", "--memory", "64m", "busybox", "sleep", "100").stdout)
		if got := readTrim(t, filepath.Join(s.cgroup, "containers", id, "memory.max")); got != "67108864" {
			t.Errorf("memory.max = %q", got)
		}
		s.must(docker, "update", "--memory", "128m", "--memory-swap", "256m", id)
		if got := readTrim(t, filepath.Join(s.cgroup, "containers", id, "memory.max")); got != "134217728" {
			t.Errorf("memory.max after update = %q", got)
		}
		s.must(docker, "rm", "-f", id)
		return
	}
	r := s.run(docker, "run", "--rm", "--memory", "64m", "busybox", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "the memory cgroup controller is not delegated to lodged") ||
		!strings.Contains(r.stderr, "Delegate=cpu cpuset io memory pids") || !strings.Contains(r.stderr, "--cgroup-limits=warn") {
		t.Errorf("a memory limit without the memory controller: %s", r)
	}
	if ps := s.must(docker, "ps", "-aq").stdout; ps != "" {
		t.Errorf("a refused container was created: %q", ps)
	}
	r = s.run(docker, "create", "--pids-limit", "10", "busybox", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "the pids cgroup controller is not delegated") {
		t.Errorf("a pids limit without the pids controller: %s", r)
	}
	// Bad values are the user's fault, said as Docker says it.
	r = s.run(docker, "run", "--rm", "--memory", "1m", "busybox", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "Minimum memory limit allowed is 6MB") {
		t.Errorf("too small a memory limit: %s", r)
	}
	// update checks the same way.
	s.must(docker, "run", "-d", "--name", "u1", "busybox", "sleep", "100")
	r = s.run(docker, "update", "--cpus", "0.5", "u1")
	if r.code == 0 || !strings.Contains(r.stderr, "the cpu cgroup controller is not delegated") {
		t.Errorf("update --cpus without the cpu controller: %s", r)
	}
	s.must(docker, "update", "--restart", "unless-stopped", "u1")
	if rp := s.must(docker, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "u1").stdout; rp != "unless-stopped\n" {
		t.Errorf("restart policy after update: %q", rp)
	}
	s.must(docker, "rm", "-f", "u1")
}

func TestCgroupLimitsWarn(t *testing.T) {
	s, docker := cgroupSession(t, "--cgroup-limits=warn")
	if strings.Contains(readTrim(t, filepath.Join(s.cgroup, "cgroup.controllers")), "memory") {
		t.Skip("the memory controller is delegated here: nothing to warn about")
	}
	r := s.must(docker, "run", "--rm", "--memory", "64m", "--pids-limit", "20", "busybox", "echo", "ran")
	if r.stdout != "ran\n" {
		t.Errorf("output: %q", r.stdout)
	}
	for _, want := range []string{"WARNING", "the memory cgroup controller is not delegated to lodged: the memory limits are not enforced", "the pids cgroup controller"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the CLI did not print %q: %s", want, r)
		}
	}
	s.must(docker, "run", "-d", "--name", "u1", "busybox", "sleep", "100")
	r = s.must(docker, "update", "--cpus", "0.5", "u1")
	if !strings.Contains(r.stderr+r.stdout, "the cpu cgroup controller is not delegated") {
		t.Errorf("update with --cgroup-limits=warn: %s", r)
	}
	s.must(docker, "rm", "-f", "u1")
}

// TestCgroupStats: docker stats shows a running container's row, once and
// streaming.
func TestCgroupStats(t *testing.T) {
	s, docker := cgroupSession(t)
	// The busy loop ends by itself, should the test be killed half-way.
	s.must(docker, "run", "-d", "--name", "busy", "busybox", "sh", "-c", "sleep 1000 & exec timeout 120 sh -c 'while :; do :; done'")
	r := s.must(docker, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}} {{.MemUsage}} {{.CPUPerc}}")
	f := strings.Fields(r.stdout)
	if len(f) < 4 || f[0] != "busy" || f[1] != "3" {
		t.Fatalf("docker stats --no-stream: %s", r)
	}
	// Over a second of a busy loop: some CPU, however loaded the machine.
	cpu, _ := strconv.ParseFloat(strings.TrimSuffix(f[len(f)-1], "%"), 64)
	if cpu <= 0 {
		t.Errorf("a busy loop shows %v%% CPU", cpu)
	}
	r = s.must(docker, "stats", "--no-stream")
	if !strings.Contains(r.stdout, "CONTAINER ID") || !strings.Contains(r.stdout, "busy") {
		t.Errorf("docker stats --no-stream table: %s", r)
	}
	// The stream goes on until the client leaves (killed: the CLI ignores
	// SIGTERM while it streams).
	r = s.run("timeout", "-s", "KILL", "4", docker, "stats", "--format", "{{.Name}} {{.PIDs}}", "busy")
	if strings.Count(r.stdout, "busy 3") < 2 {
		t.Errorf("docker stats (streaming): %s", r)
	}
	s.must(docker, "rm", "-f", "busy")

	// NET I/O counts the container's own interface: a few pings to its
	// gateway show up on both sides.
	s.must(docker, "run", "-d", "--name", "talker", "busybox", "sh", "-c", "ping -c 3 -i 0.2 $(ip route | busybox awk '/default/ {print $3}') >/dev/null; sleep 1000")
	waitFor(t, 20*time.Second, func() bool {
		out := s.must(docker, "stats", "--no-stream", "--format", "{{.NetIO}}", "talker").stdout
		return !strings.HasPrefix(out, "0B / ") && !strings.HasSuffix(strings.TrimSpace(out), "/ 0B")
	})
	s.must(docker, "rm", "-f", "talker")
}

// TestCgroupInfo: docker info names the cgroup driver and version.
func TestCgroupInfo(t *testing.T) {
	s, docker := cgroupSession(t)
	r := s.must(docker, "info", "--format", "{{.CgroupDriver}} {{.CgroupVersion}}")
	if r.stdout != "cgroupfs 2\n" {
		t.Errorf("docker info: %q", r.stdout)
	}
	r = s.must("lodge", "info")
	if !strings.Contains(r.stdout, v2Path(s.cgroup)) || !strings.Contains(r.stdout, "Cgroup controllers delegated") {
		t.Errorf("lodge info does not name the delegated cgroup %s:\n%s", v2Path(s.cgroup), r.stdout)
	}
}

// TestNoCgroupDelegation: a lodged outside any delegated cgroup still runs
// containers, and says clearly what it cannot do.
func TestNoCgroupDelegation(t *testing.T) {
	docker := needDocker(t)
	s := newSession(t, lookupUser(t, "LODGE_TEST_USER"))
	s.removeCgroup()
	s.cgroup = "" // started where the test runs: no delegation
	s.start()
	s.loadBusybox(docker)
	s.must(docker, "run", "-d", "--name", "n1", "busybox", "sleep", "100")
	r := s.run(docker, "pause", "n1")
	if r.code == 0 || !strings.Contains(r.stderr, "pause needs the cgroup v2 freezer in a cgroup delegated to lodged") {
		t.Errorf("pause without delegation: %s", r)
	}
	r = s.run(docker, "run", "--rm", "--memory", "64m", "busybox", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "the memory cgroup controller is not delegated") {
		t.Errorf("a limit without delegation: %s", r)
	}
	if r := s.must(docker, "info", "--format", "{{.CgroupDriver}}"); r.stdout != "none\n" {
		t.Errorf("cgroup driver without delegation: %q", r.stdout)
	}
	s.must(docker, "rm", "-f", "n1")
}

// TestLodgeCgroupVerbs: lodge's own CLI pauses, unpauses, updates and
// samples, and passes limits on.
func TestLodgeCgroupVerbs(t *testing.T) {
	s, docker := cgroupSession(t)
	s.must("lodge", "run", "-d", "--name", "l1", "busybox", "sleep", "100")
	if r := s.must("lodge", "pause", "l1"); r.stdout != "l1\n" {
		t.Errorf("lodge pause: %s", r)
	}
	if st := s.must(docker, "inspect", "-f", "{{.State.Status}}", "l1").stdout; st != "paused\n" {
		t.Errorf("after lodge pause: %q", st)
	}
	s.must("lodge", "unpause", "l1")
	if st := s.must(docker, "inspect", "-f", "{{.State.Status}}", "l1").stdout; st != "running\n" {
		t.Errorf("after lodge unpause: %q", st)
	}
	r := s.must("lodge", "stats", "--no-stream")
	if !strings.Contains(r.stdout, "CONTAINER ID") || !strings.Contains(r.stdout, "l1") {
		t.Errorf("lodge stats --no-stream: %s", r)
	}
	s.must("lodge", "update", "--restart", "always", "l1")
	if rp := s.must(docker, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "l1").stdout; rp != "always\n" {
		t.Errorf("after lodge update --restart: %q", rp)
	}
	if !strings.Contains(readTrim(t, filepath.Join(s.cgroup, "cgroup.controllers")), "pids") {
		r = s.run("lodge", "run", "--rm", "--pids-limit", "10", "busybox", "true")
		if r.code == 0 || !strings.Contains(r.stderr, "the pids cgroup controller is not delegated") {
			t.Errorf("lodge run --pids-limit without the controller: %s", r)
		}
	}
	s.must("lodge", "rm", "-f", "l1")
}

// TestCgroupOCIRuntime: a container on the runc binary (--runtime runc)
// is placed, paused and killed through its cgroup the same way.
func TestCgroupOCIRuntime(t *testing.T) {
	s, docker := cgroupSession(t)
	id := strings.TrimSpace(s.must(docker, "run", "-d", "--runtime", "runc", "busybox", "sh", "-c", "(setsid sleep 4747 &); exec sleep 4848").stdout)
	dir := filepath.Join(s.cgroup, "containers", id)
	pids := waitPids(t, dir, 2)
	if len(pids) != 2 {
		t.Fatalf("the container's cgroup holds %v, want its init and the daemonised sleep", pids)
	}
	s.must(docker, "exec", "-d", id, "sleep", "4949")
	if pids = waitPids(t, dir, 3); len(pids) != 3 {
		t.Errorf("after exec on runc the container's cgroup holds %v", pids)
	}
	s.must(docker, "pause", id)
	if ev := readTrim(t, filepath.Join(dir, "cgroup.events")); !strings.Contains(ev, "frozen 1") {
		t.Errorf("paused on runc, but cgroup.events says %q", ev)
	}
	s.must(docker, "rm", "-f", id)
	waitGone(t, pids, 10*time.Second)
}

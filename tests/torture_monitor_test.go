package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lodge-containers/lodge/proc"
)

// tortureContainers is how many containers the torture tests run
// (LODGE_TORTURE_CONTAINERS, 20 by default).
func tortureContainers(t *testing.T) int {
	n := 20
	if v := os.Getenv("LODGE_TORTURE_CONTAINERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 8 {
			t.Fatalf("LODGE_TORTURE_CONTAINERS=%q: want a number, at least 8", v)
		}
	}
	return n
}

// victim is a container of the torture tests, as the host sees it.
type victim struct {
	name    string
	init    int   // its init's host pid
	procs   []int // the init and its daemonised child
	monitor int   // its monitor's pid
}

// runVictim starts a container whose init (a sleep, as pid 1 it ignores
// SIGTERM) has a daemonised child, and finds its processes and monitor.
func runVictim(t *testing.T, s *session, docker, name string, runArgs []string) victim {
	t.Helper()
	args := append(append([]string{"run", "-d", "--name", name}, runArgs...), "busybox", "sh", "-c", "(setsid sleep 4242 &); exec sleep 4343")
	s.must(docker, args...)
	v := victim{name: name}
	v.init, _ = strconv.Atoi(strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.State.Pid}}", name).stdout))
	if v.init <= 0 {
		t.Fatalf("%s: no pid", name)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		v.procs = append([]int{v.init}, proc.Descendants(v.init)...)
		// Not the short-lived subshell that forks it: the sleep itself.
		if len(v.procs) == 2 && proc.Cmdline(v.procs[1]) == "sleep 4242" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: processes %v, want the init and its daemonised sleep", name, v.procs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := proc.ReadStat(v.init)
	if err != nil {
		t.Fatal(err)
	}
	v.monitor = st.PPID
	// lodge-monitor becomes lodge-shim once it has created the container
	// with libcontainer; with an OCI runtime binary it stays itself.
	want := "lodge-shim"
	for _, a := range runArgs {
		if strings.HasPrefix(a, "--runtime") {
			want = "lodge-monitor"
		}
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", v.monitor)); filepath.Base(exe) != want {
		t.Fatalf("%s: the init's parent %d runs %q, not %s", name, v.monitor, exe, want)
	}
	return v
}

// runVictimProcs finds a running container's init and monitor.
func runVictimProcs(t *testing.T, s *session, docker, name string) victim {
	t.Helper()
	v := victim{name: name}
	v.init, _ = strconv.Atoi(strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.State.Pid}}", name).stdout))
	st, err := proc.ReadStat(v.init)
	if err != nil {
		t.Fatal(err)
	}
	v.procs, v.monitor = []int{v.init}, st.PPID
	return v
}

// adoptingMonitor reports whether a monitor that adopted container id
// runs.
func adoptingMonitor(id string) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && strings.Contains(proc.Cmdline(pid), id+"/monitor-adopt.json") {
			return true
		}
	}
	return false
}

// killMonitor kills a container's monitor with SIGKILL and waits until it
// is gone; the container's processes must live on.
func (v victim) killMonitor(t *testing.T) {
	t.Helper()
	// ESRCH: killed already, with others at once.
	if err := syscall.Kill(v.monitor, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		t.Fatalf("%s: killing monitor %d: %v", v.name, v.monitor, err)
	}
	waitGone(t, []int{v.monitor}, 10*time.Second)
	for _, p := range v.procs {
		if !processAlive(p) {
			t.Fatalf("%s: process %d died with its monitor", v.name, p)
		}
	}
}

// gone checks that none of the container's processes is left, within a
// few seconds.
func (v victim) gone(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var alive []int
		for _, p := range v.procs {
			if processAlive(p) {
				alive = append(alive, p)
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: %s left processes %v running", v.name, what, alive)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noCgroup checks that the container's cgroup is gone.
func noCgroup(t *testing.T, s *session, id, what string) {
	t.Helper()
	if s.cgroup == "" {
		return
	}
	dir := filepath.Join(s.cgroup, "containers", id)
	deadline := time.Now().Add(5 * time.Second)
	for fileExists(dir) {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			t.Errorf("%s left its cgroup %s (processes %q)", what, dir, strings.Fields(string(b)))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func containerID(t *testing.T, s *session, docker, name string) string {
	t.Helper()
	return strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.Id}}", name).stdout)
}

// stateOf is inspect's status, exit code and error of a container.
func stateOf(t *testing.T, s *session, docker, name string) string {
	t.Helper()
	return strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}", name).stdout)
}

// TestTortureMonitorKill: kill -9 of containers' monitors, one and then
// several, among LODGE_TORTURE_CONTAINERS running containers in a
// delegated cgroup. A container whose monitor died is still running: ps
// shows it, exec works, another monitor takes over its output (attach
// works), stop and kill really stop it (its processes are
// gone on the host) with the exit code of lodge's signal, an init that
// ends on its own is recorded with 255 and a reason, and rm -f leaves no
// process and no cgroup, also after a kill -9 and restart of lodged, and
// for a monitor killed while no lodged ran (no monitor can take over).
func TestTortureMonitorKill(t *testing.T) {
	s, docker := cgroupSession(t)
	tortureMonitorKill(t, s, docker)
}

// TestTortureMonitorKillRunc: the same with containers run by the runc
// binary (--runtime runc), whose monitor is the init's subreaper.
func TestTortureMonitorKillRunc(t *testing.T) {
	s, docker := cgroupSession(t)
	tortureMonitorKill(t, s, docker, "--runtime", "runc")
}

// TestTortureMonitorKillNoCgroup: the same without a delegated cgroup,
// where the container's init (its pid and start time) is the only handle:
// killing it ends its pid namespace.
func TestTortureMonitorKillNoCgroup(t *testing.T) {
	docker := needDocker(t)
	s := newSession(t, lookupUser(t, "LODGE_TEST_USER"))
	s.removeCgroup()
	s.cgroup = ""
	s.start()
	s.loadBusybox(docker)
	if d := s.must(docker, "info", "--format", "{{.CgroupDriver}}").stdout; d != "none\n" {
		t.Fatalf("lodged has a cgroup driver %q, want none", d)
	}
	tortureMonitorKill(t, s, docker)
}

func tortureMonitorKill(t *testing.T, s *session, docker string, runArgs ...string) {
	n := tortureContainers(t)
	vs := make([]victim, n)
	for i := range vs {
		vs[i] = runVictim(t, s, docker, fmt.Sprintf("t%02d", i), runArgs)
	}
	ids := map[string]string{}
	for _, v := range vs {
		ids[v.name] = containerID(t, s, docker, v.name)
	}

	// One monitor, then several at once.
	vs[0].killMonitor(t)
	for _, v := range vs[1:6] {
		syscall.Kill(v.monitor, syscall.SIGKILL)
	}
	for _, v := range vs[1:6] {
		v.killMonitor(t) // waits until it is gone
	}
	time.Sleep(time.Second) // time for lodged to notice, and get it wrong

	ps := strings.Fields(s.must(docker, "ps", "--format", "{{.Names}}").stdout)
	if len(ps) != n {
		t.Errorf("docker ps shows %d containers running, want %d: %v", len(ps), n, ps)
	}
	for _, v := range vs[:6] {
		if st := stateOf(t, s, docker, v.name); st != "running 0" {
			t.Errorf("%s, its monitor killed: inspect says %q, want running", v.name, st)
		}
	}
	// exec works: the runtime's state does not need the monitor.
	if r := s.run(docker, "exec", "t00", "cat", "/proc/1/cmdline"); r.code != 0 || !strings.Contains(r.stdout, "4343") {
		t.Errorf("exec into a container whose monitor died: %s", r)
	}
	// lodged put another monitor in place: the output goes on to the log
	// and attach works.
	s.must(docker, "run", "-d", "--name", "talker", "busybox", "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); usleep 20000; done")
	talker := runVictimProcs(t, s, docker, "talker")
	time.Sleep(500 * time.Millisecond)
	killed := time.Now()
	talker.killMonitor(t)
	// Measured, not asserted: how long the container is without one.
	for !adoptingMonitor(containerID(t, s, docker, "talker")) && time.Since(killed) < 10*time.Second {
		time.Sleep(time.Millisecond)
	}
	t.Logf("a new monitor for talker %s after the kill", time.Since(killed).Round(time.Millisecond))
	before := strings.Count(s.must(docker, "logs", "talker").stdout, "\n")
	att := s.background(s.home, docker, "attach", "--no-stdin", "talker")
	time.Sleep(1500 * time.Millisecond)
	logs := strings.Split(strings.TrimSpace(s.must(docker, "logs", "talker").stdout), "\n")
	if len(logs) < before+20 {
		t.Errorf("talker logged %d lines, %d of them when its monitor was killed: its output is no longer logged", len(logs), before)
	}
	// In order, with one gap at most: what the monitor had read but not
	// yet logged when it was killed (one read) is lost with it; what was
	// still in the pipe is not.
	gaps, next := 0, 0
	for _, l := range logs {
		var i int
		if _, err := fmt.Sscanf(l, "tick %d", &i); err != nil || i < next {
			t.Errorf("talker's log has %q after tick %d", l, next-1)
			break
		}
		if i > next {
			gaps++
			t.Logf("talker's log goes from tick %d to %q", next-1, l)
		}
		next = i + 1
	}
	if gaps > 1 {
		t.Errorf("talker's log has %d gaps: output was lost after its monitor died", gaps)
	}
	if out := att.output(); !strings.Contains(out, "tick") {
		t.Errorf("docker attach to talker, after its monitor was replaced, shows %q", out)
	}
	s.must(docker, "rm", "-f", "talker")
	att.stop()
	talker.gone(t, "docker rm -f")

	// With a tty, the new monitor gets the tty's master: output goes on,
	// and resize reaches the container's console.
	s.must(docker, "run", "-d", "-t", "--name", "tty", "busybox", "sh", "-c", "while true; do stty size; usleep 50000; done")
	tty := runVictimProcs(t, s, docker, "tty")
	time.Sleep(300 * time.Millisecond)
	tty.killMonitor(t)
	time.Sleep(300 * time.Millisecond)
	r := s.run("curl", "-sS", "-w", " %{http_code}", "--unix-socket", s.socket(), "-X", "POST", "http://lodge/v1.51/containers/tty/resize?h=41&w=101")
	if r.stdout != " 200" {
		t.Errorf("resize of a tty container whose monitor was replaced: %s", r)
	}
	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(s.must(docker, "logs", "tty").stdout, "41 101")
	})
	s.must(docker, "rm", "-f", "tty")
	tty.gone(t, "docker rm -f")

	// stop: SIGTERM (ignored by sleep as pid 1), then SIGKILL.
	s.must(docker, "stop", "-t", "1", "t00")
	vs[0].gone(t, "docker stop")
	noCgroup(t, s, ids["t00"], "docker stop")
	if st := stateOf(t, s, docker, "t00"); st != "exited 137" {
		t.Errorf("t00 after stop: %q, want exited 137", st)
	}
	if r := s.must(docker, "wait", "t00"); strings.TrimSpace(r.stdout) != "137" {
		t.Errorf("docker wait after stop: %q", r.stdout)
	}
	// It starts again, with a monitor of its own.
	s.must(docker, "start", "t00")
	if r := s.must(docker, "exec", "t00", "echo", "again"); r.stdout != "again\n" {
		t.Errorf("exec after restart: %q", r.stdout)
	}

	// kill returns once it has exited.
	s.must(docker, "kill", "t01")
	if st := stateOf(t, s, docker, "t01"); st != "exited 137" {
		t.Errorf("t01 right after kill: %q, want exited 137", st)
	}
	vs[1].gone(t, "docker kill")
	noCgroup(t, s, ids["t01"], "docker kill")

	// An init that ends on its own, with nobody left to see its code.
	syscall.Kill(vs[2].init, syscall.SIGKILL)
	waitFor(t, 10*time.Second, func() bool {
		return strings.HasPrefix(stateOf(t, s, docker, "t02"), "exited")
	})
	if st := stateOf(t, s, docker, "t02"); st != "exited 255 the container's monitor died before the container ended: its exit status is unknown" {
		t.Errorf("t02, ended without its monitor: %q", st)
	}
	if r := s.must(docker, "wait", "t02"); strings.TrimSpace(r.stdout) != "255" {
		t.Errorf("docker wait of t02: %q", r.stdout)
	}
	vs[2].gone(t, "its init's end") // the daemonised child too
	noCgroup(t, s, ids["t02"], "its init's end")

	// rm -f, monitor dead.
	s.must(docker, "rm", "-f", "t03")
	vs[3].gone(t, "docker rm -f")
	noCgroup(t, s, ids["t03"], "docker rm -f")

	// A full restart of lodged, kill -9; more monitors die while no
	// daemon runs: a victim's, a talker's and a tty container's.
	s.must(docker, "run", "-d", "--name", "talker2", "busybox", "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); usleep 20000; done")
	talker2 := runVictimProcs(t, s, docker, "talker2")
	s.must(docker, "run", "-d", "-t", "--name", "tty2", "busybox", "sleep", "4444")
	tty2 := runVictimProcs(t, s, docker, "tty2")
	pid := s.pid()
	syscall.Kill(pid, syscall.SIGKILL)
	waitGone(t, []int{pid}, 10*time.Second)
	for _, v := range []victim{vs[6], talker2, tty2} {
		v.killMonitor(t)
	}
	s.start()
	ps = strings.Fields(s.must(docker, "ps", "--format", "{{.Names}}").stdout)
	if want := n - 3 + 2; len(ps) != want { // t01, t02, t03 are gone
		t.Errorf("after the restart docker ps shows %d containers, want %d: %v", len(ps), want, ps)
	}
	for _, v := range []victim{vs[4], vs[6], talker2, tty2} {
		if st := stateOf(t, s, docker, v.name); st != "running 0" {
			t.Errorf("%s after the restart: %q, want running", v.name, st)
		}
		if r := s.run(docker, "exec", v.name, "true"); r.code != 0 {
			t.Errorf("exec into %s after the restart: %s", v.name, r)
		}
	}
	// Nobody held talker2's output when its monitor died: the new monitor
	// reads from new ends of its pipes, and its output is logged again.
	last := func() int {
		lines := strings.Split(strings.TrimSpace(s.must(docker, "logs", "talker2").stdout), "\n")
		var i int
		fmt.Sscanf(lines[len(lines)-1], "tick %d", &i)
		return i
	}
	first := last()
	waitFor(t, 10*time.Second, func() bool { return last() > first+20 })
	// A tty's master cannot be had again: tty2 runs on without a monitor,
	// and attach says so (the docker CLI shows only the status of the
	// refused upgrade).
	if r := s.run(docker, "attach", "--no-stdin", "tty2"); r.code == 0 || !strings.Contains(r.stderr, "503") {
		t.Errorf("docker attach to a container without a monitor: %s", r)
	}
	if r := s.run("curl", "-sS", "--unix-socket", s.socket(), "-X", "POST", "http://lodge/v1.51/containers/tty2/attach?stream=1&stdout=1"); !strings.Contains(r.stdout, "runs on without its monitor, which died") {
		t.Errorf("API attach to a container without a monitor: %s", r)
	}
	s.must(docker, "stop", "-t", "1", "tty2")
	tty2.gone(t, "docker stop without a monitor")
	if r := s.must(docker, "wait", "tty2"); strings.TrimSpace(r.stdout) != "137" {
		t.Errorf("docker wait of tty2: %q", r.stdout)
	}
	s.must(docker, "rm", "-f", "talker2", "tty2")
	talker2.gone(t, "docker rm -f after a restart")
	s.must(docker, "stop", "-t", "0", "t05")
	vs[5].gone(t, "docker stop after a restart")
	noCgroup(t, s, ids["t05"], "docker stop after a restart")
	if r := s.must(docker, "wait", "t05"); strings.TrimSpace(r.stdout) != "137" {
		t.Errorf("docker wait of t05: %q", r.stdout)
	}
	s.must(docker, "rm", "-f", "t04", "t06")
	for _, v := range []victim{vs[4], vs[6]} {
		v.gone(t, "docker rm -f after a restart")
		noCgroup(t, s, ids[v.name], "docker rm -f after a restart")
	}

	// The containers whose monitors live were not disturbed, and go too.
	for _, v := range vs[7:] {
		for _, p := range v.procs {
			if !processAlive(p) {
				t.Errorf("%s (monitor alive) lost process %d", v.name, p)
			}
		}
	}
	all := strings.Fields(s.must(docker, "ps", "-aq").stdout)
	start := time.Now()
	s.must(docker, append([]string{"rm", "-f"}, all...)...)
	t.Logf("rm -f of %d containers took %s", len(all), time.Since(start).Round(time.Millisecond))
	for _, v := range vs {
		v.gone(t, "the final rm -f")
		noCgroup(t, s, ids[v.name], "the final rm -f")
	}
	// Nor is the runtime's state of any left (the monitor removes it when
	// its container ends; lodged when the monitor could not).
	filepath.WalkDir(s.runDir, func(p string, d os.DirEntry, err error) error {
		for _, id := range ids {
			if err == nil && strings.Contains(d.Name(), id) {
				t.Errorf("left behind in the runtime dir: %s", p)
			}
		}
		return nil
	})
}

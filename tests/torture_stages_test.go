package tests

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lodge-containers/lodge/netns"
	"github.com/lodge-containers/lodge/proc"
)

// The torture suite: kill -9 of each of lodged's stages with containers
// running (LODGE_TORTURE_CONTAINERS, 20 unless set), then everything a
// user had must still work: the containers run, exec into each gives the
// right exit code, logs go on, published ports answer, the uplink reaches
// the host's loopback, new runs work, lodge daemon start works without a
// stop first, and no zombie or stray process is left.

func TestTortureKillHostSide(t *testing.T)         { torture(t, "host-side lodged") }
func TestTortureKillRootlesskitChild(t *testing.T) { torture(t, "rootlesskit child") }
func TestTortureKillKeeper(t *testing.T)           { torture(t, "keeper") }
func TestTortureKillDaemon(t *testing.T)           { torture(t, "daemon") }

// The daemon, then the keeper before anything starts a daemon again: only
// the containers and their monitors hold the namespaces, and the next
// start comes back into them.
func TestTortureKillDaemonAndKeeper(t *testing.T) { torture(t, "daemon and keeper") }

// The same deaths with the built-in gvisor-tap-vsock uplink, which the
// keeper brings back with lodge-usernet from inside the namespace.
func TestTortureUsernetKillHostSide(t *testing.T) {
	tortureWith(t, "host-side lodged", "gvisor-tap-vsock")
}
func TestTortureUsernetKillRootlesskitChild(t *testing.T) {
	tortureWith(t, "rootlesskit child", "gvisor-tap-vsock")
}
func TestTortureUsernetKillKeeper(t *testing.T) { tortureWith(t, "keeper", "gvisor-tap-vsock") }
func TestTortureUsernetKillDaemonAndKeeper(t *testing.T) {
	tortureWith(t, "daemon and keeper", "gvisor-tap-vsock")
}

func tortureCount(t *testing.T) int {
	t.Helper()
	n := 20
	if v := os.Getenv("LODGE_TORTURE_CONTAINERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("LODGE_TORTURE_CONTAINERS=%q is not a positive number", v)
		}
	}
	return n
}

type tortureRig struct {
	t        *testing.T
	s        *session
	docker   string
	names    []string
	ports    map[string]int
	uplink   int    // a server on the host's loopback
	driver   string // the uplink driver
	lodged   []string
	userNS   string // lodged's user namespace
	hostSide int
}

func torture(t *testing.T, stage string) { tortureWith(t, stage, "slirp4netns") }

func tortureWith(t *testing.T, stage, driver string) {
	docker := needDocker(t)
	s := newSession(t, lookupUser(t, "LODGE_TEST_USER"))
	r := &tortureRig{t: t, s: s, docker: docker, ports: map[string]int{}, uplink: hostLoopbackServer(t, "uplink\n"), driver: driver}
	if driver != "slirp4netns" {
		r.lodged = []string{"--network-driver", driver}
	}
	s.start(r.lodged...)
	s.loadBusybox(docker)
	r.userNS = nsOf(s.pid())
	if r.userNS == "" {
		t.Fatal("cannot read the daemon's user namespace")
	}
	r.hostSide = s.pidFile("keeper.pid")
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"keeper.log", "lodged.log"} {
				b, _ := os.ReadFile(filepath.Join(s.runDir, f))
				t.Logf("%s:\n%s", f, b)
			}
		}
	})
	for i := 0; i < tortureCount(t); i++ {
		name := fmt.Sprintf("tt%02d", i)
		port := freePort(t)
		// httpd goes to the background; sh at pid 1 writes a log line
		// five times a second.
		s.must(docker, "run", "-d", "--name", name, "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "busybox", "sh", "-c",
			"httpd -p 80 -h /etc; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done")
		r.names = append(r.names, name)
		r.ports[name] = port
	}
	r.check("before the kill")

	victims := map[string]int{
		"host-side lodged":  r.hostSide,
		"rootlesskit child": s.childPID(),
		"keeper":            parentOf(s.pid()),
		"daemon":            s.pid(),
	}
	for _, v := range strings.Split(stage, " and ") {
		victim := victims[v]
		if victim <= 1 {
			t.Fatalf("no pid for the %s", v)
		}
		t.Logf("killing the %s (pid %d)", v, victim)
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitGone(t, []int{victim}, 10*time.Second)
	}
	if strings.Contains(stage, "daemon") {
		waitFor(t, 10*time.Second, func() bool { return s.run("lodge", "daemon", "status").code != 0 })
		if stage != "daemon" {
			// The host side ends with the keeper.
			waitGone(t, []int{victims["host-side lodged"], victims["rootlesskit child"]}, 15*time.Second)
		}
		s.start(r.lodged...) // no stop first
		if ns := nsOf(s.pid()); ns != r.userNS {
			t.Errorf("the restarted daemon is in user namespace %s, the containers in %s", ns, r.userNS)
		}
	} else {
		// The daemon stays, and is whole again once the surviving
		// stages have re-created what died.
		if res := s.run("lodge", "daemon", "start"); res.code == 0 || !strings.Contains(res.stderr, "already running") {
			t.Errorf("lodge daemon start with the daemon still serving: %s", res)
		}
		for _, p := range []int{victims["host-side lodged"], victims["rootlesskit child"]} {
			waitGone(t, []int{p}, 15*time.Second) // taken over, not left beside the new
		}
	}
	r.check("after the kill of the " + stage)

	// A second death, of the daemon: the next start comes back into the
	// same namespaces through whichever keeper holds them now.
	if !strings.Contains(stage, "daemon") {
		pid := s.pid()
		syscall.Kill(pid, syscall.SIGKILL)
		waitGone(t, []int{pid}, 10*time.Second)
		deadline := time.Now().Add(15 * time.Second)
		for {
			res := s.run("lodge", "daemon", "status")
			if strings.Contains(res.stderr, "is not running") {
				break
			}
			if time.Now().After(deadline) {
				holders, _ := exec.Command("sh", "-c", "grep FLOCK /proc/locks; ls -l /proc/*/fd 2>/dev/null | grep lodged.lock").CombinedOutput()
				t.Fatalf("the killed daemon's lock is still held: %s\n%s", res, holders)
			}
			time.Sleep(100 * time.Millisecond)
		}
		s.start(r.lodged...)
		if ns := nsOf(s.pid()); ns != r.userNS {
			t.Errorf("the restarted daemon is in user namespace %s, the containers in %s", ns, r.userNS)
		}
		r.check("after a daemon restart following the kill of the " + stage)
	}
	r.teardown()
}

// check asserts what a user sees of the running containers and of new
// ones.
func (r *tortureRig) check(when string) {
	t, s, docker := r.t, r.s, r.docker
	t.Helper()
	t.Logf("checking %s", when)
	// Every container still running.
	out := s.must(docker, append([]string{"inspect", "-f", "{{.Name}} {{.State.Running}}"}, r.names...)...).stdout
	for _, n := range r.names {
		if !strings.Contains(out, "/"+n+" true\n") {
			t.Errorf("%s: %s is not running:\n%s", when, n, out)
		}
	}
	// The published ports answer (the port driver may be coming back).
	for _, n := range r.names {
		host := strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.Config.Hostname}}", n).stdout)
		url := fmt.Sprintf("http://127.0.0.1:%d/hostname", r.ports[n])
		if got, err := getWithin(url, 30*time.Second); err != nil || strings.TrimSpace(got) != host {
			t.Errorf("%s: %s's published port: %q, %v (want %q)", when, n, got, err, host)
		}
	}
	// exec into each, with the exit code.
	for _, n := range r.names {
		res := s.run(docker, "exec", n, "sh", "-c", "echo in-$(hostname); exit 7")
		if res.code != 7 || !strings.HasPrefix(res.stdout, "in-") {
			t.Errorf("%s: exec into %s: %s", when, n, res)
		}
	}
	// The logs go on.
	first := map[string]int{}
	for _, n := range r.names {
		first[n] = r.lastTick(n)
	}
	time.Sleep(1200 * time.Millisecond)
	for _, n := range r.names {
		if last := r.lastTick(n); last <= first[n] {
			t.Errorf("%s: %s's log stopped at tick %d", when, n, last)
		}
	}
	// The uplink: an old container and a new one reach the host's
	// loopback (slirp4netns shows it at 10.0.2.2, gvisor-tap-vsock at
	// 10.0.2.1).
	hostLoopback, _ := netns.UplinkAddrs(r.driver)
	url := fmt.Sprintf("http://%s:%d/", hostLoopback, r.uplink)
	var res result
	deadline := time.Now().Add(30 * time.Second)
	for {
		res = s.run(docker, "exec", r.names[0], "busybox", "wget", "-qO-", url)
		if res.stdout == "uplink\n" || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if res.stdout != "uplink\n" {
		t.Errorf("%s: the uplink from a running container: %s", when, res)
	}
	if res := s.run(docker, "run", "--rm", "busybox", "busybox", "wget", "-qO-", url); res.stdout != "uplink\n" {
		t.Errorf("%s: the uplink from a new container: %s", when, res)
	}
	// New runs, one with a published port.
	if res := s.run(docker, "run", "--rm", "busybox", "echo", "new"); res.code != 0 || res.stdout != "new\n" {
		t.Errorf("%s: a new run: %s", when, res)
	}
	p := freePort(t)
	s.must(docker, "run", "-d", "--name", "fresh", "-p", fmt.Sprintf("127.0.0.1:%d:80", p), "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	if got, err := getWithin(fmt.Sprintf("http://127.0.0.1:%d/hostname", p), 15*time.Second); err != nil || got == "" {
		t.Errorf("%s: a new container's published port: %q, %v", when, got, err)
	}
	s.must(docker, "rm", "-f", "fresh")
	// No zombies under any of lodged's processes.
	var z []string
	for i := 0; i < 50; i++ {
		if z = r.zombies(); len(z) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(z) > 0 {
		t.Errorf("%s: zombies: %s", when, strings.Join(z, "; "))
	}
	// One uplink, not a dead one's beside it.
	switch r.driver {
	case "slirp4netns":
		if n := r.countSession("slirp4netns"); n != 1 {
			t.Errorf("%s: %d slirp4netns processes", when, n)
		}
	case "gvisor-tap-vsock":
		// One virtual network and one tap forwarder: the two halves
		// lodged started, or the keeper's re-attached one serving as
		// both.
		nw, fwd := r.countUsernet()
		if nw != 1 || fwd != 1 {
			t.Errorf("%s: %d lodge-usernet virtual networks and %d tap forwarders", when, nw, fwd)
		}
	}
}

func (r *tortureRig) lastTick(name string) int {
	r.t.Helper()
	out := r.s.must(r.docker, "logs", "--tail", "1", name).stdout
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "tick")))
	if err != nil {
		r.t.Errorf("%s's last log line: %q", name, out)
		return -1
	}
	return n
}

// teardown removes the containers, stops lodged and checks that nothing of
// the session is left running.
func (r *tortureRig) teardown() {
	t, s := r.t, r.s
	t.Helper()
	s.must(r.docker, append([]string{"rm", "-f"}, r.names...)...)
	s.must("lodge", "daemon", "stop", "--timeout", "20s")
	var left []int
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if left = r.sessionProcs(); len(left) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range left {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		t.Errorf("left running after stop: pid %d %q", p, strings.ReplaceAll(string(cmd), "\x00", " "))
		syscall.Kill(p, syscall.SIGKILL)
	}
}

// sessionProcs are the live processes of the session: in lodged's user
// namespace, or of its user with the session's runtime dir in their
// environment (the host side, the uplink).
func (r *tortureRig) sessionProcs() []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || procState(pid) == "Z" || procState(pid) == "" {
			continue
		}
		if r.ofSession(pid) {
			out = append(out, pid)
		}
	}
	return out
}

func (r *tortureRig) ofSession(pid int) bool {
	if nsOf(pid) == r.userNS {
		return true
	}
	var st syscall.Stat_t
	if syscall.Stat(fmt.Sprintf("/proc/%d", pid), &st) != nil || int(st.Uid) != r.s.u.uid {
		return false
	}
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	return strings.Contains(string(env), "\x00XDG_RUNTIME_DIR="+r.s.xdgRun+"\x00") || strings.HasPrefix(string(env), "XDG_RUNTIME_DIR="+r.s.xdgRun+"\x00")
}

func (r *tortureRig) countSession(comm string) int {
	n := 0
	for _, p := range r.sessionProcs() {
		if c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p)); strings.TrimSpace(string(c)) == comm {
			n++
		}
	}
	return n
}

// countUsernet counts the session's lodge-usernet processes that run a
// virtual network (parent, reattach) and that forward a tap (child,
// reattach).
func (r *tortureRig) countUsernet() (network, forwarder int) {
	for _, p := range r.sessionProcs() {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		args := strings.Split(string(b), "\x00")
		if len(args) < 2 || filepath.Base(args[0]) != "lodge-usernet" {
			continue
		}
		switch args[1] {
		case "parent":
			network++
		case "child":
			forwarder++
		case "reattach":
			network++
			forwarder++
		}
	}
	return network, forwarder
}

// zombies are dead processes whose parent is one of the session's.
func (r *tortureRig) zombies() []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || procState(pid) != "Z" {
			continue
		}
		if pp := parentOf(pid); pp > 1 && r.ofSession(pp) {
			c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			pc, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pp))
			out = append(out, fmt.Sprintf("%d %s (parent %d %s)", pid, strings.TrimSpace(string(c)), pp, strings.TrimSpace(string(pc))))
		}
	}
	return out
}

func nsOf(pid int) string {
	ns, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "ns", "user"))
	return ns
}

// procState is the one-letter state of pid, "" when it is gone.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// parentOf is pid's parent's pid, 0 when pid is gone.
func parentOf(pid int) int {
	st, _ := proc.ReadStat(pid) // the zero Stat when pid is gone
	return st.PPID
}

// getWithin fetches url from the host, retrying until d has passed.
func getWithin(url string, d time.Duration) (string, error) {
	c := &http.Client{Timeout: 3 * time.Second}
	deadline := time.Now().Add(d)
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return string(b), nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

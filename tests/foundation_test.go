package tests

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lodge-containers/lodge/netns"
	"github.com/lodge-containers/lodge/userns"
)

func TestDockerCLIVersionAndInfo(t *testing.T) {
	docker := needDocker(t)
	u := lookupUser(t, "LODGE_TEST_USER")
	s := newSession(t, u)
	s.start()

	v := s.must(docker, "version")
	if !strings.Contains(v.stdout, "Server: lodge") || !strings.Contains(v.stdout, "API version:      1.51 (minimum version 1.24)") {
		t.Errorf("docker version does not show lodge's server:\n%s", v.stdout)
	}
	// As Docker's engine, it says when it was built (its commit's time)
	// and that it is not experimental, rather than two blanks.
	if !regexp.MustCompile(`(?m)^  Built: +\S`).MatchString(v.stdout) || !regexp.MustCompile(`(?m)^  Experimental: +false$`).MatchString(v.stdout) {
		t.Errorf("docker version: no build time or experimental flag:\n%s", v.stdout)
	}
	// An old client that pins its version is still served.
	old := s.run(docker, "version", "--format", "{{.Server.Version}}")
	if old.code != 0 {
		t.Errorf("docker version --format: %s", old)
	}
	// Clients parse it as a semantic version: the commit rides as build
	// metadata, never as the version itself.
	if sv := strings.TrimSpace(old.stdout); !regexp.MustCompile(`^0\.\d+\.\d+(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`).MatchString(sv) {
		t.Errorf("server version %q is not 0.x.y[+build]", sv)
	}

	info := s.must(docker, "info")
	for _, want := range []string{
		"Network driver: ",
		"Data root: " + filepath.Join(s.data, "lodge"),
		"Socket: " + s.socket(),
		"rootless",
		// The drivers it has, which clients read to know what to ask for.
		"Volume: local\n",
		"Network: bridge host null\n",
		"Log: json-file k8s-file local\n",
	} {
		if !strings.Contains(info.stdout, want) {
			t.Errorf("docker info lacks %q:\n%s", want, info.stdout)
		}
	}

	uids, _, src, err := userns.LookupSubIDs(u.uid, u.name)
	if err != nil {
		t.Fatal(err)
	}
	if src == userns.SourceNone {
		skipOrFail(t, "user %s has no subuid range", u.name)
	}
	want := userns.FormatMap(userns.BuildMap(u.uid, uids))
	if !strings.Contains(info.stdout, "ID map (uid): "+want) {
		t.Errorf("docker info does not show the uid map %s:\n%s", want, info.stdout)
	}
	// The kernel's view, from outside: the namespace maps the subuid range.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", s.childPID()))
	if err != nil {
		t.Fatal(err)
	}
	m, err := userns.ParseProcMap(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := userns.FormatMap(m); got != want {
		t.Errorf("/proc/<child>/uid_map = %s, want %s", got, want)
	}

	// What is not built answers 501 with a clear message, never a fake success.
	vl := s.run(docker, "swarm", "init")
	if vl.code == 0 || !strings.Contains(vl.stderr, "lodge does not implement POST /swarm/init") {
		t.Errorf("docker swarm init against an engine without swarm: %s", vl)
	}
}

func TestLodgeCLI(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	s := newSession(t, u)

	down := s.run("lodge", "--no-autostart", "info")
	if down.code == 0 || !strings.Contains(down.stderr, "is it running? Start it with 'lodge daemon start'") || strings.Contains(down.stderr, "goroutine") {
		t.Errorf("lodge info with no daemon: %s", down)
	}
	s.start()
	st := s.must("lodge", "daemon", "status")
	if !strings.Contains(st.stdout, "lodged is running (pid "+strconv.Itoa(s.pid())+")") {
		t.Errorf("status: %s", st)
	}
	v := s.must("lodge", "version")
	if !strings.Contains(v.stdout, "Server: lodge") || !strings.Contains(v.stdout, "rootlesskit:") {
		t.Errorf("lodge version:\n%s", v.stdout)
	}
	info := s.must("lodge", "info")
	for _, want := range []string{"ID map (uid):", "ID map (gid):", "Network driver:", "Cgroups:", "Data root:", "Socket:", "Storage:"} {
		if !strings.Contains(info.stdout, want) {
			t.Errorf("lodge info lacks %q:\n%s", want, info.stdout)
		}
	}
	// --host and LODGE_HOST reach the same daemon.
	s.must("lodge", "--host", "unix://"+s.socket(), "version")

	s.must("lodge", "daemon", "stop")
	s.started = false
	if _, err := os.Stat(s.socket()); !os.IsNotExist(err) {
		t.Errorf("socket left after a clean stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.runDir, "lodged.pid")); !os.IsNotExist(err) {
		t.Errorf("pid file left after a clean stop: %v", err)
	}
	fi, err := os.Stat(s.runDir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("runtime dir mode: %v %v", fi.Mode(), err)
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	s := newSession(t, u)
	s.start()
	r := s.run("lodged")
	if r.code == 0 {
		t.Fatalf("second lodged started: %s", r)
	}
	if want := fmt.Sprintf("lodged is already running for this user (pid %d", s.pid()); !strings.Contains(r.stderr, want) {
		t.Errorf("second lodged's error lacks %q: %s", want, r)
	}
	s.must("lodge", "version") // the first is undisturbed
}

// TestKill9ThenFreshStart kills the API daemon with SIGKILL: the keeper
// keeps the namespaces, and a new daemon started soon after comes back into
// the same ones (where running containers would be).
func TestKill9ThenFreshStart(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	s := newSession(t, u)
	s.start()
	pid := s.pid()
	child := s.childPID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, []int{pid}, 10*time.Second)
	if r := s.run("lodge", "version"); r.code == 0 {
		t.Fatalf("lodge version answered with the daemon killed: %s", r)
	}
	s.start()
	if s.pid() == pid {
		t.Fatal("same pid after restart")
	}
	if s.childPID() != child {
		t.Errorf("namespace changed across a daemon restart: child pid %d, was %d", s.childPID(), child)
	}
	s.must("lodge", "version")
	s.must(needDocker(t), "info")
}

func TestSingleIDFallback(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_NOSUB_USER")
	if _, _, src, _ := userns.LookupSubIDs(u.uid, u.name); src != userns.SourceNone {
		skipOrFail(t, "user %s has subordinate ids; the fallback needs a user without (hack/test.sh makes one)", u.name)
	}
	s := newSession(t, u)
	s.start()
	info := s.must("lodge", "info")
	if !strings.Contains(info.stdout, "single-id map") || !regexp.MustCompile(fmt.Sprintf(`ID map \(uid\):\s+0:%d:1\n`, u.uid)).MatchString(info.stdout) {
		t.Errorf("lodge info in single-id mode:\n%s", info.stdout)
	}
	if !strings.Contains(info.stderr, "WARNING: running with a single-id map") {
		t.Errorf("no single-id warning: %s", info.stderr)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", s.childPID()))
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := userns.ParseProcMap(string(b)); len(m) != 1 || m[0].HostID != u.uid || m[0].Size != 1 {
		t.Errorf("uid_map = %q, want only %d", b, u.uid)
	}
}

// TestOtherUsersRefused checks both walls: another user cannot reach the
// socket at all (0700 runtime dir, 0600 socket), and a peer that gets past
// file modes (root does) is still refused by the peer-credential check.
func TestOtherUsersRefused(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	s := newSession(t, u)
	s.start()

	if os.Getuid() != 0 {
		skipOrFail(t, "needs root to act as another user")
	}
	other := lookupUser(t, "LODGE_TEST_OTHER_USER")
	if other.uid == u.uid {
		t.Fatal("other user is the test user")
	}
	docker := needDocker(t)
	cmd := s.command(context.Background(), docker, "version")
	asUser(cmd, other)
	out, err := cmd.CombinedOutput()
	if err == nil || strings.Contains(string(out), "Server: lodge") {
		t.Errorf("another user reached lodged: %s", out)
	}

	// Root passes the file modes; the daemon must still refuse it.
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", s.socket())
	}}}
	resp, err := c.Get("http://lodge/v1.51/info")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), fmt.Sprintf("answers only its owner (uid %d)", u.uid)) || strings.Contains(string(body), "ID map") {
		t.Errorf("root got %d %s", resp.StatusCode, body)
	}
}

// TestNetworkDrivers starts lodged with each uplink that can work on this
// machine and checks that the one asked for is the one in use; a driver
// that cannot work is refused with its reason, never swapped silently.
func TestNetworkDrivers(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	for _, d := range []string{"slirp4netns", "gvisor-tap-vsock", "none"} {
		t.Run(d, func(t *testing.T) {
			s := newSession(t, u)
			s.start("--network-driver", d)
			info := s.must("lodge", "info")
			if !regexp.MustCompile(`Network driver:\s+` + regexp.QuoteMeta(d) + `\n`).MatchString(info.stdout) {
				t.Errorf("asked for %s:\n%s", d, info.stdout)
			}
			if d != "none" {
				// The uplink's tap device exists in the detached namespace.
				// The namespace file is a bind mount inside lodged's mount
				// namespace: reach it through the child's root.
				nsPath := fmt.Sprintf("/proc/%d/root%s", s.childPID(), filepath.Join(s.runDir, "rootlesskit", "netns"))
				r := s.run("nsenter", "--preserve-credentials", "-U", "-t", strconv.Itoa(s.childPID()), "--net="+nsPath, "ip", "-o", "addr", "show", "tap0")
				if r.code != 0 || !strings.Contains(r.stdout, "inet ") {
					t.Errorf("no addressed tap0 in the containers' namespace: %s", r)
				}
				// Traffic crosses the uplink: a container in that
				// namespace reaches a server on the host's loopback.
				docker := needDocker(t)
				s.loadBusybox(docker)
				port := hostLoopbackServer(t, "through the uplink")
				hostLoopback, _ := netns.UplinkAddrs(d)
				url := fmt.Sprintf("http://%s:%d/", hostLoopback, port)
				out := s.must(docker, "run", "--rm", "--network", "host", "busybox", "busybox", "wget", "-qO-", url)
				if strings.TrimSpace(out.stdout) != "through the uplink" {
					t.Errorf("wget through %s: %s", d, out)
				}
			}
		})
	}
	t.Run("pasta", func(t *testing.T) {
		// Debian 12's pasta is too old for rootlesskit: asked for by name it
		// must be refused with that reason; a newer one must work.
		s := newSession(t, u)
		r := s.run("lodged", "--network-driver", "pasta")
		if r.code == 0 {
			t.Fatalf("lodged exited 0 in the foreground: %s", r)
		}
		if strings.Contains(r.stderr, "older than 2023-12") || strings.Contains(r.stderr, "pasta is not installed") {
			return
		}
		s.start("--network-driver", "pasta")
		s.must("lodge", "version")
	})
	t.Run("unknown", func(t *testing.T) {
		s := newSession(t, u)
		r := s.run("lodged", "--network-driver", "carrier-pigeon")
		if r.code == 0 || !strings.Contains(r.stderr, `unknown network driver "carrier-pigeon"`) {
			t.Errorf("unknown driver: %s", r)
		}
	})
}

package tests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests run where there is no systemd (no user manager), as on the
// CI machine: they prove that asking for systemd fails clearly and that
// the other choices change nothing. Getting a scope from a real user
// manager cannot be tested here; cgroupv2's unit tests drive that logic
// with a fake systemd.

// TestCgroupManagerSystemdWithoutBus: --cgroup-manager systemd fails
// before any namespace is made, saying why, and so does daemon.json's
// cgroup-manager; the flag wins over the file.
func TestCgroupManagerSystemdWithoutBus(t *testing.T) {
	docker := needDocker(t)
	s := newSession(t, lookupUser(t, "LODGE_TEST_USER"))

	failsClearly := func(how string, args ...string) {
		t.Helper()
		r := s.runWith(s.inCgroup(), "lodge", append([]string{"daemon", "start", "--"}, args...)...)
		if r.code == 0 {
			s.started = true
			t.Fatalf("%s: lodged started without a systemd user bus: %s", how, r)
		}
		for _, want := range []string{"--cgroup-manager systemd: no systemd user bus", "DBUS_SESSION_BUS_ADDRESS", "--cgroup-manager cgroupfs"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s: the error does not say %q: %s", how, want, r)
			}
		}
		if pid := s.pidFile("keeper.pid"); pid != 0 && processAlive(pid) {
			t.Errorf("%s: a namespace keeper (pid %d) runs after the failure", how, pid)
		}
		if r := s.run("lodge", "--no-autostart", "info"); r.code == 0 {
			t.Errorf("%s: something answers on the socket: %s", how, r)
		}
	}
	failsClearly("flag", "--cgroup-manager", "systemd")

	s.must("sh", "-c", `mkdir -p "$XDG_CONFIG_HOME/lodge" && echo '{"cgroup-manager": "systemd"}' > "$XDG_CONFIG_HOME/lodge/daemon.json"`)
	failsClearly("daemon.json")

	r := s.runWith(s.inCgroup(), "lodge", "daemon", "start", "--", "--cgroup-manager", "sometimes")
	if r.code == 0 {
		s.started = true
		t.Fatalf("lodged took --cgroup-manager sometimes: %s", r)
	}
	if !strings.Contains(r.stderr, `"sometimes" is none of auto, systemd, cgroupfs`) {
		t.Errorf("a bad --cgroup-manager: %s", r)
	}

	// The flag overrides daemon.json, and cgroupfs never asks systemd:
	// lodged starts in the cgroup it was given, as without the flag.
	s.start("--cgroup-manager", "cgroupfs")
	want := "none\n"
	if s.cgroup != "" {
		want = "cgroupfs\n"
	}
	if r := s.must(docker, "info", "--format", "{{.CgroupDriver}}"); r.stdout != want {
		t.Errorf("cgroup driver: %q, want %q", r.stdout, want)
	}
	if r := s.must("lodge", "info"); strings.Contains(r.stdout, "systemd") {
		t.Errorf("lodge info speaks of systemd though it was never asked:\n%s", r.stdout)
	}
}

// TestCgroupManagerBusWithoutSystemd: on a user bus where no systemd
// answers (a session bus from dbus-daemon alone), lodged really asks
// over D-Bus from its host-side process, as the user: --cgroup-manager
// systemd fails naming systemd's refusal, and auto outside a delegated
// cgroup starts as before and says in info what came of asking.
func TestCgroupManagerBusWithoutSystemd(t *testing.T) {
	docker := needDocker(t)
	s := newSession(t, lookupUser(t, "LODGE_TEST_USER"))
	s.removeCgroup()
	s.cgroup = "" // started where the test runs: not delegated, so auto asks
	startUserBus(t, s)

	r := s.run("lodge", "daemon", "start", "--", "--cgroup-manager", "systemd")
	if r.code == 0 {
		s.started = true
		t.Fatalf("lodged started with no systemd on the bus: %s", r)
	}
	for _, want := range []string{"--cgroup-manager systemd: systemd refused scope lodged-", "org.freedesktop.systemd1"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the error does not say %q: %s", want, r)
		}
	}

	s.start()
	r = s.must("lodge", "info")
	for _, want := range []string{"systemd gave no delegated scope", "org.freedesktop.systemd1"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("lodge info does not say %q:\n%s", want, r.stdout)
		}
	}
	if r := s.must(docker, "info", "--format", "{{.CgroupDriver}}"); r.stdout != "none\n" {
		t.Errorf("cgroup driver: %q", r.stdout)
	}
}

// startUserBus runs a D-Bus daemon as the session's user on
// $XDG_RUNTIME_DIR/bus, with no service on it and none to activate, until
// the test ends.
func startUserBus(t *testing.T, s *session) {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		skipOrFail(t, "dbus-daemon is not installed (package dbus-daemon; hack/setup-root.sh installs it)")
	}
	sock := filepath.Join(s.xdgRun, "bus")
	conf := filepath.Join(s.base, "bus.conf")
	err := os.WriteFile(conf, []byte(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=`+sock+`</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := s.command(ctx, "dbus-daemon", "--config-file="+conf, "--nofork", "--nopidfile")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for !fileExists(sock) {
		if time.Now().After(deadline) {
			t.Fatalf("dbus-daemon made no socket at %s: %s", sock, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

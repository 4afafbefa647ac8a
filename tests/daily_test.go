package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestAutostart: with lodged not running, lodge commands start it — one
// lodged for two commands racing — and the docker CLI reaches it through
// the docker context lodge made, without DOCKER_HOST.
func TestAutostart(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	docker := needDocker(t)
	s := newSession(t, u)
	if r := s.run("lodge", "ps"); r.code == 0 { // the session says LODGE_NO_AUTOSTART=1
		t.Fatalf("LODGE_NO_AUTOSTART=1 lodge ps started or found a daemon: %s", r)
	}
	s.autostart = true
	var wg sync.WaitGroup
	results := make([]result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.runWith(s.inCgroup(), "lodge", "ps")
		}()
	}
	wg.Wait()
	s.started = true
	started := 0
	for _, r := range results {
		if r.code != 0 {
			t.Fatalf("lodge ps with no daemon: %s", r)
		}
		if strings.Contains(r.stderr, "lodged started (pid") {
			started++
		}
	}
	if started != 1 {
		t.Errorf("%d of two racing commands started lodged, want 1:\n%s\n%s", started, results[0], results[1])
	}
	// The docker CLI, without DOCKER_HOST, through the context.
	r := s.runWith(func(c *exec.Cmd) {
		var env []string
		for _, e := range c.Env {
			if !strings.HasPrefix(e, "DOCKER_HOST=") {
				env = append(env, e)
			}
		}
		c.Env = env
	}, docker, "info", "--format", "{{.DockerRootDir}}")
	if r.code != 0 || !strings.HasPrefix(strings.TrimSpace(r.stdout), s.data) {
		t.Errorf("docker info through the lodge context: %s", r)
	}
}

// TestMakeInstall: `make install` lays lodge out as a package would
// (bin/lodge, bin/lodged, libexec/lodge/helpers, completions); lodged
// started from there finds its helpers and runs a container.
func TestMakeInstall(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	docker := needDocker(t)
	s := newSession(t, u)
	dest := filepath.Join(s.base, "pkg")
	cmd := exec.Command("make", "-C", "..", "install", "DESTDIR="+dest, "PREFIX=/opt/lodge")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	prefix := filepath.Join(dest, "opt", "lodge")
	for _, f := range []string{"bin/lodge", "bin/lodged", "libexec/lodge/lodge-monitor", "libexec/lodge/lodge-shim", "libexec/lodge/lodge-usernet", "libexec/lodge/lodge-init", "libexec/lodge/lodge-buildkitd", "libexec/lodge/lodge-keeper", "share/bash-completion/completions/lodge"} {
		if !fileExists(filepath.Join(prefix, f)) {
			t.Errorf("make install did not install %s", f)
		}
	}
	exec.Command("chmod", "-R", "a+rX", s.base).Run()
	// Only the installed bin/ on PATH: the helpers must come from
	// libexec/lodge, not from the build directory.
	installedPath := func(c *exec.Cmd) {
		if in := s.inCgroup(); in != nil {
			in(c)
		}
		for i, e := range c.Env {
			if strings.HasPrefix(e, "PATH=") {
				c.Env[i] = "PATH=" + filepath.Join(prefix, "bin") + ":/usr/local/bin:/usr/bin:/bin"
			}
		}
	}
	r := s.runWith(installedPath, filepath.Join(prefix, "bin", "lodge"), "daemon", "start")
	if r.code != 0 {
		log, _ := os.ReadFile(filepath.Join(s.runDir, "lodged.log"))
		t.Fatalf("installed lodge daemon start: %s\n%s", r, log)
	}
	s.started = true
	s.loadBusybox(docker)
	if r := s.must(docker, "run", "--rm", "--init", "busybox", "echo", "installed"); strings.TrimSpace(r.stdout) != "installed" {
		t.Errorf("run from the installed layout: %s", r)
	}
	// The container's monitor is the installed one (lodged would stand in
	// for a missing lodge-monitor, so running alone does not show it), in
	// its long-lived form, lodge-shim.
	id := strings.TrimSpace(s.must(docker, "run", "-d", "busybox", "sleep", "60").stdout)
	monitor := filepath.Join(prefix, "libexec", "lodge", "lodge-shim")
	found := false
	procs, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, p := range procs {
		if exe, err := os.Readlink(p); err == nil && exe == monitor {
			found = true
		}
	}
	if !found {
		t.Errorf("no process runs %s: lodged did not find its helper in libexec", monitor)
	}
	s.must(docker, "rm", "-f", id)
	if r := s.must("lodge", "daemon", "install"); !strings.Contains(r.stdout, "lodged.service") {
		t.Errorf("lodge daemon install: %s", r)
	}
	unit, err := os.ReadFile(filepath.Join(s.home, ".config", "systemd", "user", "lodged.service"))
	if err != nil || !strings.Contains(string(unit), "ExecStart="+binDir+"/lodged") || !strings.Contains(string(unit), "Delegate=yes") {
		t.Errorf("unit: %v\n%s", err, unit)
	}
	s.must("lodge", "daemon", "uninstall")
	if fileExists(filepath.Join(s.home, ".config", "systemd", "user", "lodged.service")) {
		t.Error("lodge daemon uninstall left the unit")
	}
}

// TestLodgeEventsAndBuilder: docker's events and builder prune have lodge
// verbs too.
func TestLodgeEventsAndBuilder(t *testing.T) {
	s, docker := containerSession(t)
	since := strings.TrimSpace(s.must(docker, "info", "--format", "{{.SystemTime}}").stdout)
	s.must("lodge", "run", "--rm", "--name", "evt", "busybox", "true")
	until := strings.TrimSpace(s.must(docker, "info", "--format", "{{.SystemTime}}").stdout)
	out := s.must("lodge", "events", "--since", since, "--until", until, "--filter", "type=container").stdout
	for _, want := range []string{" container create ", " container start ", " container die ", "name=evt"} {
		if !strings.Contains(out, want) {
			t.Errorf("lodge events lacks %q:\n%s", want, out)
		}
	}
	js := s.must("lodge", "events", "--since", since, "--until", until, "--format", "json", "--filter", "event=destroy").stdout
	if !strings.Contains(js, `"Action":"destroy"`) {
		t.Errorf("lodge events --format json:\n%s", js)
	}
	if r := s.must("lodge", "builder", "prune", "-f"); !strings.Contains(r.stdout, "Total reclaimed space") {
		t.Errorf("lodge builder prune: %s", r)
	}
}

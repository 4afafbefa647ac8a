package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildKitSession is a container session whose docker CLI has buildx as
// its plugin, so `docker build` and `docker buildx build` go through
// BuildKit. Its busybox is also in a loopback registry under a name lodge
// does not hold, so FROM that name goes past lodge's store to the
// registry. It returns the session, the docker CLI and that name.
func buildKitSession(t *testing.T) (*session, string, string) {
	t.Helper()
	buildx := clientBinary(t, "docker-buildx")
	s, docker := containerSession(t)
	plugins := filepath.Join(s.home, ".docker", "cli-plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(buildx, filepath.Join(plugins, "docker-buildx")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(plugins), plugins} {
		os.Chown(d, s.u.uid, s.u.gid)
	}
	base := startRegistry(t, "", "") + "/library/busybox:latest"
	s.must(docker, "tag", "busybox", base)
	s.must(docker, "push", base)
	s.must(docker, "rmi", base)
	return s, docker, base
}

// buildKitHelper is the pid of lodged's lodge-buildkitd, 0 if none runs.
func buildKitHelper(s *session) int {
	for _, pid := range descendants([]int{s.pid()}) {
		if exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); filepath.Base(exe) == "lodge-buildkitd" {
			return pid
		}
	}
	return 0
}

// vertexes reads BuildKit's plain progress: the name of each step by its
// number, and which numbers were CACHED, DONE or ERROR.
func vertexes(out string) (names map[string]string, state map[string]string) {
	names, state = map[string]string{}, map[string]string{}
	head := regexp.MustCompile(`(?m)^#(\d+) (\[.*)$`)
	for _, m := range head.FindAllStringSubmatch(out, -1) {
		names[m[1]] = m[2]
	}
	end := regexp.MustCompile(`(?m)^#(\d+) (CACHED|DONE|ERROR)`)
	for _, m := range end.FindAllStringSubmatch(out, -1) {
		state[m[1]] = m[2]
	}
	return names, state
}

func TestBuildKit(t *testing.T) {
	s, docker, base := buildKitSession(t)
	multi := strings.ReplaceAll(`FROM BASE AS tools
ARG GREETING=hello
RUN echo "$GREETING from tools" > /tool.txt

FROM BASE
COPY app.txt /app/app.txt
RUN cat /app/app.txt > /app/copy.txt
COPY --from=tools /tool.txt /app/tool.txt
CMD ["cat", "/app/copy.txt", "/app/tool.txt"]
`, "BASE", base)
	dir := s.buildDir("bk", map[string]string{"Dockerfile": multi, "app.txt": "app-content\n"})
	if buildKitHelper(s) != 0 {
		t.Fatal("lodge-buildkitd runs before any BuildKit request")
	}
	buildx := func(args ...string) result {
		return s.runWith(func(c *exec.Cmd) { c.Dir = dir }, docker, append([]string{"buildx"}, args...)...)
	}

	t.Run("multi-stage build runs", func(t *testing.T) {
		start := time.Now()
		r := buildx("build", "--progress=plain", "--build-arg", "GREETING=hi", "-t", "app:1", ".")
		if r.code != 0 {
			t.Fatalf("docker buildx build: %s", r)
		}
		t.Logf("cold docker buildx build: %v", time.Since(start).Round(time.Millisecond))
		if out := s.must(docker, "run", "--rm", "app:1").stdout; out != "app-content\nhi from tools\n" {
			t.Errorf("docker run app:1: %q", out)
		}
		if imgs := s.must(docker, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout; !strings.Contains(imgs, "app:1") {
			t.Errorf("docker images: %q", imgs)
		}
	})

	t.Run("FROM images only lodge holds", func(t *testing.T) {
		d := s.buildDir("bklocal", map[string]string{"Dockerfile": "FROM busybox AS b\nRUN echo from-local-busybox > /b.txt\n" +
			"FROM app:1\nCOPY --from=b /b.txt /app/b.txt\nCMD [\"cat\", \"/app/tool.txt\", \"/app/b.txt\"]\n"})
		if r := s.runWith(func(c *exec.Cmd) { c.Dir = d }, docker, "buildx", "build", "-t", "onlocal", "."); r.code != 0 {
			t.Fatalf("build FROM local images: %s", r)
		}
		if out := s.must(docker, "run", "--rm", "onlocal").stdout; out != "hi from tools\nfrom-local-busybox\n" {
			t.Errorf("docker run onlocal: %q", out)
		}
	})

	t.Run("rebuild is cached", func(t *testing.T) {
		start := time.Now()
		r := buildx("build", "--progress=plain", "--build-arg", "GREETING=hi", "-t", "app:1", ".")
		if r.code != 0 {
			t.Fatalf("rebuild: %s", r)
		}
		t.Logf("warm docker buildx build: %v", time.Since(start).Round(time.Millisecond))
		names, state := vertexes(r.stderr)
		steps := 0
		for id, name := range names {
			if strings.Contains(name, "] RUN ") || strings.Contains(name, "] COPY ") {
				steps++
				if state[id] != "CACHED" {
					t.Errorf("step %q is %q, not CACHED", name, state[id])
				}
			}
		}
		if steps != 4 {
			t.Errorf("%d RUN/COPY steps in the progress, want 4:\n%s", steps, r.stderr)
		}
	})

	t.Run("docker build goes through BuildKit", func(t *testing.T) {
		r := s.runWith(func(c *exec.Cmd) { c.Dir = dir }, docker, "build", "--build-arg", "GREETING=yo", "-t", "app:2", ".")
		if r.code != 0 {
			t.Fatalf("docker build: %s", r)
		}
		if all := r.stdout + r.stderr; strings.Contains(all, "Step 1/") || !strings.Contains(all, "naming to docker.io/library/app:2") {
			t.Errorf("docker build with buildx is not BuildKit's:\n%s", all)
		}
		if out := s.must(docker, "run", "--rm", "app:2").stdout; out != "app-content\nyo from tools\n" {
			t.Errorf("docker run app:2: %q", out)
		}
	})

	// A changed build arg reruns the step; --no-cache would not do here,
	// as it gives the step a fresh cache mount too (BuildKit's behaviour,
	// moby/buildkit#5305).
	t.Run("cache mount persists across builds", func(t *testing.T) {
		d := s.buildDir("bkcache", map[string]string{"Dockerfile": "FROM " + base + "\n" +
			"ARG RUN=1\n" +
			"RUN --mount=type=cache,target=/cache echo run $RUN >> /cache/runs && wc -l < /cache/runs > /runs\n" +
			"CMD [\"cat\", \"/runs\"]\n"})
		for _, n := range []string{"1", "2"} {
			if r := s.runWith(func(c *exec.Cmd) { c.Dir = d }, docker, "buildx", "build", "--build-arg", "RUN="+n, "-t", "cachemount", "."); r.code != 0 {
				t.Fatalf("build: %s", r)
			}
		}
		if out := strings.TrimSpace(s.must(docker, "run", "--rm", "cachemount").stdout); out != "2" {
			t.Errorf("the cache mount saw %q runs, want 2", out)
		}
	})

	t.Run("secret is mounted and not kept", func(t *testing.T) {
		d := s.buildDir("bksecret", map[string]string{
			"secret.txt": "s3cret-value",
			"Dockerfile": "FROM " + base + "\n" +
				"RUN --mount=type=secret,id=s cat /run/secrets/s | wc -c > /secret-len\n" +
				"CMD [\"sh\", \"-c\", \"cat /secret-len; ls /run/secrets/s 2>&1 || echo absent\"]\n"})
		r := s.runWith(func(c *exec.Cmd) { c.Dir = d }, docker, "buildx", "build", "--secret", "id=s,src="+filepath.Join(d, "secret.txt"), "-t", "secret", ".")
		if r.code != 0 {
			t.Fatalf("build: %s", r)
		}
		out := s.must(docker, "run", "--rm", "secret").stdout
		if !strings.HasPrefix(out, "12\n") || !strings.Contains(out, "absent") {
			t.Errorf("secret in the RUN step and not in the image: %q", out)
		}
		if save := s.must(docker, "save", "secret").stdout; strings.Contains(save, "s3cret-value") {
			t.Error("the secret's value is in the image")
		}
	})

	t.Run("local output", func(t *testing.T) {
		dest := filepath.Join(s.home, "bkout")
		if r := buildx("build", "--output", "type=local,dest="+dest, "."); r.code != 0 {
			t.Fatalf("build: %s", r)
		}
		b, err := os.ReadFile(filepath.Join(dest, "app", "tool.txt"))
		if err != nil || string(b) != "hello from tools\n" {
			t.Errorf("local output's app/tool.txt: %q, %v", b, err)
		}
	})

	t.Run("failing RUN names the step", func(t *testing.T) {
		d := s.buildDir("bkfail", map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo about-to-fail && exit 3\n"})
		r := s.runWith(func(c *exec.Cmd) { c.Dir = d }, docker, "buildx", "build", "--progress=plain", ".")
		if r.code == 0 || !strings.Contains(r.stderr, "RUN echo about-to-fail && exit 3") || !strings.Contains(r.stderr, "exit code: 3") {
			t.Errorf("failing build: %s", r)
		}
	})

	t.Run("du and prune", func(t *testing.T) {
		du := s.must(docker, "buildx", "du")
		if !strings.Contains(du.stdout, "Total:") {
			t.Fatalf("docker buildx du: %s", du)
		}
		prune := s.must(docker, "buildx", "prune", "-f")
		if !strings.Contains(prune.stdout, "Total:") {
			t.Errorf("docker buildx prune -f: %s", prune)
		}
		// Images live in lodge's store, not in BuildKit's cache.
		if out := s.must(docker, "run", "--rm", "app:1").stdout; out != "app-content\nhi from tools\n" {
			t.Errorf("app:1 after prune: %q", out)
		}
		after := s.must(docker, "buildx", "du", "--verbose").stdout
		if strings.Contains(after, "Reclaimable:\ttrue") {
			t.Errorf("reclaimable records left after prune -f:\n%s", after)
		}
	})

	t.Run("helper stops with lodged", func(t *testing.T) {
		helper := buildKitHelper(s)
		if helper == 0 {
			t.Fatal("no lodge-buildkitd below lodged")
		}
		if st, err := os.ReadFile("/proc/" + strconv.Itoa(helper) + "/status"); err == nil {
			if m := regexp.MustCompile(`VmRSS:\s+(\d+ kB)`).FindSubmatch(st); m != nil {
				t.Logf("lodge-buildkitd RSS after the builds: %s", m[1])
			}
		}
		if log, err := os.ReadFile(filepath.Join(s.runDir, "lodged.log")); err == nil {
			if m := regexp.MustCompile(`lodge-buildkitd started.*took=(\S+)`).FindSubmatch(log); m != nil {
				t.Logf("lodge-buildkitd start: %s", m[1])
			}
		}
		mine, _ := os.Readlink("/proc/self/ns/net")
		its, _ := os.Readlink("/proc/" + strconv.Itoa(helper) + "/ns/net")
		t.Logf("helper's network namespace is the test's (the host's): %v", mine == its)
		s.must("lodge", "daemon", "stop", "--timeout", "15s")
		waitGone(t, []int{helper}, 15*time.Second)
	})
}

// TestBuildKitCompose: compose v2 with its defaults builds through
// BuildKit (lodged says Builder-Version 2) and the image runs.
func TestBuildKitCompose(t *testing.T) {
	compose := clientBinary(t, "docker-compose")
	s, docker, base := buildKitSession(t)
	plugins := filepath.Join(s.home, ".docker", "cli-plugins")
	if err := os.Symlink(compose, filepath.Join(plugins, "docker-compose")); err != nil {
		t.Fatal(err)
	}
	dir := s.buildDir("bkcompose", map[string]string{
		"compose.yaml": "services:\n  web:\n    build: .\n    image: composed:1\n",
		"Dockerfile":   "FROM " + base + "\nRUN echo built-by-compose > /made.txt\nCMD [\"cat\", \"/made.txt\"]\n",
	})
	r := s.runWith(func(c *exec.Cmd) { c.Dir = dir }, docker, "compose", "--progress=plain", "build")
	if r.code != 0 {
		t.Fatalf("docker compose build: %s", r)
	}
	if all := r.stdout + r.stderr; strings.Contains(all, "Step 1/") || !strings.Contains(all, "RUN echo built-by-compose") {
		t.Errorf("compose did not build through BuildKit:\n%s", all)
	}
	if out := s.must(docker, "run", "--rm", "composed:1").stdout; out != "built-by-compose\n" {
		t.Errorf("docker run composed:1: %q", out)
	}
	// up --build, with compose's defaults, rebuilds what changed and runs it.
	df := "FROM " + base + "\nRUN echo rebuilt-by-up > /made.txt\nCMD [\"cat\", \"/made.txt\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	inDir := func(c *exec.Cmd) { c.Dir = dir }
	if r := s.runWith(inDir, docker, "compose", "--progress=plain", "up", "-d", "--build"); r.code != 0 {
		t.Fatalf("docker compose up -d --build: %s", r)
	}
	deadline := time.Now().Add(20 * time.Second)
	var logs result
	for time.Now().Before(deadline) {
		if logs = s.runWith(inDir, docker, "compose", "logs", "--no-log-prefix", "web"); strings.Contains(logs.stdout, "rebuilt-by-up") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(logs.stdout, "rebuilt-by-up") {
		t.Errorf("compose up --build ran the old image: %s", logs)
	}
	s.runWith(inDir, docker, "compose", "down")
}

// TestBuildKitHelperDiesWithDaemon: kill -9 of lodged takes its BuildKit
// helper along (containers outlive lodged, the helper must not), and the
// restarted lodged starts a new one that can open BuildKit's state.
func TestBuildKitHelperDiesWithDaemon(t *testing.T) {
	s, docker, _ := buildKitSession(t)
	s.must(docker, "buildx", "du") // any BuildKit request starts the helper
	helper := buildKitHelper(s)
	if helper == 0 {
		t.Fatal("no lodge-buildkitd after a BuildKit request")
	}
	pid := s.pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, []int{pid, helper}, 15*time.Second)
	s.start()
	d := s.buildDir("again", map[string]string{"Dockerfile": "FROM busybox\nRUN echo after-restart > /a.txt\nCMD [\"cat\", \"/a.txt\"]\n"})
	if r := s.runWith(func(c *exec.Cmd) { c.Dir = d }, docker, "buildx", "build", "-t", "again", "."); r.code != 0 {
		t.Fatalf("build after the restart: %s", r)
	}
	if out := s.must(docker, "run", "--rm", "again").stdout; out != "after-restart\n" {
		t.Errorf("docker run again: %q", out)
	}
}

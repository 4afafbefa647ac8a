package tests

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/md5"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The three-stage Dockerfile the build tests share: two stages that
// depend on nothing but busybox (built at the same time), a final stage
// that copies from both, a heredoc RUN, a build arg, and every config
// instruction `docker inspect` shows.
const threeStage = `FROM busybox AS tools
ARG GREETING=hello
RUN echo "$GREETING from tools" > /tool.txt

FROM busybox AS assets
RUN <<EOF
mkdir -p /assets
echo heredoc-ran > /assets/made.txt
EOF

FROM busybox
LABEL org.example.team=lodge
ENV APP_MODE=prod
EXPOSE 8080/tcp
WORKDIR /app
COPY app.txt /app/app.txt
RUN cat /app/app.txt > /app/copy-of-app.txt
COPY --from=tools /tool.txt /app/tool.txt
COPY --from=assets --chown=1000:1000 /assets /app/assets
USER 1000:1000
CMD ["cat", "/app/app.txt"]
`

// buildDir writes a build context under the session's home, readable by
// its user, and returns it.
func (s *session) buildDir(name string, files map[string]string) string {
	s.t.Helper()
	dir := filepath.Join(s.home, name)
	for p, body := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, s.u.uid, s.u.gid) })
	return dir
}

// inDir runs a command in dir, with extra environment and stdin.
func inDir(dir string, env []string, stdin string) func(*exec.Cmd) {
	return func(c *exec.Cmd) {
		c.Dir = dir
		c.Env = append(c.Env, env...)
		if stdin != "" {
			c.Stdin = strings.NewReader(stdin)
		}
	}
}

var imageIDRE = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// TestBuildDockerCLI: the docker CLI (classic builder, with and without
// DOCKER_BUILDKIT=0) builds a three-stage Dockerfile with --target,
// --build-arg, .dockerignore, COPY --from and --chown, a heredoc RUN and
// a cache mount; a rebuild with nothing changed is all cache and the same
// image; an edit re-runs only the steps after its COPY; the image has the
// config and history the Dockerfile says; a failing RUN leaves neither
// container nor image; the context can come from stdin.
func TestBuildDockerCLI(t *testing.T) {
	s, docker := containerSession(t)
	dir := s.buildDir("app", map[string]string{
		"Dockerfile":    threeStage,
		"app.txt":       "version-1\n",
		"secret.txt":    "must not be sent\n",
		".dockerignore": "secret.txt\n",
	})
	classic := []string{"DOCKER_BUILDKIT=0"}
	build := func(env []string, args ...string) result {
		t.Helper()
		r := s.runWith(inDir(dir, env, ""), docker, append([]string{"build"}, args...)...)
		if r.code != 0 {
			t.Fatalf("docker build %v: %s", args, r)
		}
		return r
	}
	iid := filepath.Join(s.home, "iid")

	first := build(classic, "-t", "app:1", "--build-arg", "GREETING=hey", "--iidfile", iid, ".")
	for _, want := range []string{"Step 1/", "FROM busybox", "Successfully built", "Successfully tagged app:1"} {
		if !strings.Contains(first.stdout, want) {
			t.Errorf("build output lacks %q:\n%s", want, first.stdout)
		}
	}
	id1, err := os.ReadFile(iid)
	if err != nil || !imageIDRE.Match(id1) {
		t.Fatalf("--iidfile: %q %v", id1, err)
	}

	out := s.must(docker, "run", "--rm", "app:1", "sh", "-c",
		"cat /app/app.txt /app/copy-of-app.txt /app/tool.txt /app/assets/made.txt; stat -c %u:%g /app/assets /app/assets/made.txt /app/app.txt; ls /app; id -u").stdout
	wantOut := "version-1\nversion-1\nhey from tools\nheredoc-ran\n1000:1000\n1000:1000\n0:0\napp.txt\nassets\ncopy-of-app.txt\ntool.txt\n1000\n"
	if out != wantOut {
		t.Errorf("the image's files:\n%q\nwant\n%q", out, wantOut)
	}
	if r := s.run(docker, "run", "--rm", "app:1", "ls", "/app/secret.txt", "/secret.txt"); r.code == 0 {
		t.Errorf(".dockerignore'd file reached the image: %s", r)
	}
	if out := s.must(docker, "run", "--rm", "app:1").stdout; out != "version-1\n" {
		t.Errorf("CMD: %q", out)
	}
	cfg := s.must(docker, "inspect", "-f",
		`{{json .Config.Cmd}} {{index .Config.Labels "org.example.team"}} {{json .Config.ExposedPorts}} {{.Config.WorkingDir}} {{.Config.User}} {{range .Config.Env}}{{.}};{{end}}`, "app:1").stdout
	for _, want := range []string{`["cat","/app/app.txt"]`, " lodge ", `{"8080/tcp":{}}`, " /app ", " 1000:1000 ", "APP_MODE=prod;"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("inspect lacks %q: %s", want, cfg)
		}
	}
	// One history entry per step of the final stage, above busybox's.
	base := strings.Count(s.must(docker, "history", "-q", "--no-trunc", "busybox").stdout, "\n")
	hist := s.must(docker, "history", "--no-trunc", "--format", "{{.CreatedBy}}", "app:1").stdout
	if n := strings.Count(hist, "\n"); n != base+10 {
		t.Errorf("history has %d entries, want busybox's %d + 10 steps:\n%s", n, base, hist)
	}
	for _, step := range []string{"LABEL", "ENV", "EXPOSE", "WORKDIR", "USER", "CMD", "cat /app/app.txt > /app/copy-of-app.txt"} {
		if strings.Count(hist, step) < 1 {
			t.Errorf("history lacks the %s step:\n%s", step, hist)
		}
	}
	// Untagged parents are hidden from `docker images`, as Docker hides
	// them; -a shows them. (The other stages' last images have no child
	// and show as <none>, as with Docker's classic builder.)
	parent := strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.Parent}}", "app:1").stdout)
	if !imageIDRE.MatchString(parent) {
		t.Errorf("app:1 has no Parent: %q", parent)
	} else {
		short := strings.TrimPrefix(parent, "sha256:")[:12]
		if imgs := s.must(docker, "images", "-q").stdout; strings.Contains(imgs, short) {
			t.Errorf("docker images shows the intermediate image %s:\n%s", short, imgs)
		}
		if all := s.must(docker, "images", "-aq").stdout; !strings.Contains(all, short) {
			t.Errorf("docker images -a hides the intermediate image %s:\n%s", short, all)
		}
	}

	// Nothing changed: every step from cache, the same image. The
	// default environment (no DOCKER_BUILDKIT) takes the classic builder
	// too, the docker CLI having no buildx here.
	again := build(nil, "-t", "app:1", "--build-arg", "GREETING=hey", "--iidfile", iid, ".")
	for _, st := range strings.Split(again.stdout, "Step ")[1:] {
		if makesLayer(st) && !strings.Contains(st, "Using cache") {
			t.Errorf("rebuild with nothing changed ran a step:\n%s", st)
		}
	}
	if id2, _ := os.ReadFile(iid); string(id2) != string(id1) {
		t.Errorf("rebuild made %s, first build %s", id2, id1)
	}

	// One file edited: the steps before its COPY come from cache, the
	// RUN after it runs again.
	os.WriteFile(filepath.Join(dir, "app.txt"), []byte("version-2\n"), 0o644)
	edited := build(classic, "-t", "app:2", "--build-arg", "GREETING=hey", ".")
	steps := strings.Split(edited.stdout, "Step ")
	for _, st := range steps {
		switch {
		case strings.Contains(st, "WORKDIR /app") && !strings.Contains(st, "Using cache"):
			t.Errorf("a step before the edited COPY ran again:\n%s", st)
		case strings.Contains(st, "RUN cat /app/app.txt") && strings.Contains(st, "Using cache"):
			t.Errorf("the RUN after the edited COPY came from cache:\n%s", st)
		}
	}
	if out := s.must(docker, "run", "--rm", "app:2", "cat", "/app/copy-of-app.txt").stdout; out != "version-2\n" {
		t.Errorf("after the edit: %q", out)
	}

	// --target builds a stage alone.
	build(classic, "--target", "tools", "-t", "tools:1", ".")
	if out := s.must(docker, "run", "--rm", "tools:1", "sh", "-c", "cat /tool.txt; ls /app 2>&1 || true").stdout; !strings.HasPrefix(out, "hello from tools\n") || strings.Contains(out, "app.txt") {
		t.Errorf("--target tools: %q", out)
	}

	// A failing RUN: non-zero, named with its exit code; no container
	// and no image left.
	before := s.must(docker, "images", "-aq").stdout
	bad := s.buildDir("bad", map[string]string{"Dockerfile": "FROM busybox\nRUN echo about-to-fail && exit 7\n"})
	r := s.runWith(inDir(bad, classic, ""), docker, "build", "-t", "bad:1", ".")
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "echo about-to-fail && exit 7") || !strings.Contains(r.stdout+r.stderr, "7") {
		t.Errorf("failing RUN: %s", r)
	}
	if !strings.Contains(r.stdout, "about-to-fail") {
		t.Errorf("the failing step's output was not shown: %s", r)
	}
	if ps := s.must(docker, "ps", "-aq").stdout; ps != "" {
		t.Errorf("a failed build left containers: %q", ps)
	}
	if after := s.must(docker, "images", "-aq").stdout; after != before {
		t.Errorf("a failed build left images:\nbefore %q\nafter  %q", before, after)
	}

	// A bare Dockerfile on stdin, quiet: only the ID.
	q := s.runWith(inDir(s.home, classic, "FROM busybox\nENV FROM_STDIN=1\n"), docker, "build", "-q", "-")
	if q.code != 0 || !imageIDRE.MatchString(q.stdout) || strings.Contains(q.stdout, "Step") {
		t.Errorf("docker build -q - < Dockerfile: %s", q)
	}
	// A tar on stdin.
	tarCmd := fmt.Sprintf("tar -C %s -c . | %s build -t fromtar:1 -", dir, docker)
	if r := s.runWith(inDir(s.home, classic, ""), "/bin/sh", "-c", tarCmd); r.code != 0 {
		t.Errorf("tar | docker build -: %s", r)
	}
	if out := s.must(docker, "run", "--rm", "fromtar:1").stdout; out != "version-2\n" {
		t.Errorf("image built from a tar on stdin: %q", out)
	}

	// image prune leaves the intermediate images a tagged image needs.
	s.must(docker, "image", "prune", "-f")
	if r := s.run(docker, "image", "inspect", parent); r.code != 0 {
		t.Errorf("image prune removed app:1's parent: %s", r)
	}
	// rmi of the last image takes its untagged parents along.
	s.must(docker, "rmi", "fromtar:1", "app:2", "tools:1")
	rmi := s.must(docker, "rmi", "app:1").stdout
	if strings.Count(rmi, "Deleted:") < 3 {
		t.Errorf("rmi app:1 deleted too little:\n%s", rmi)
	}
}

// TestBuildCacheMount: RUN --mount=type=cache keeps its directory from
// one build to the next.
func TestBuildCacheMount(t *testing.T) {
	s, docker := containerSession(t)
	one := s.buildDir("one", map[string]string{"Dockerfile": "FROM busybox\nRUN --mount=type=cache,target=/cache echo first-build > /cache/left\n"})
	two := s.buildDir("two", map[string]string{"Dockerfile": "FROM busybox\nRUN --mount=type=cache,target=/cache cat /cache/left > /seen\nCMD [\"cat\", \"/seen\"]\n"})
	s.runWith(inDir(one, nil, ""), docker, "build", "-t", "one", ".")
	if r := s.runWith(inDir(two, nil, ""), docker, "build", "-t", "two", "."); r.code != 0 {
		t.Fatalf("second build: %s", r)
	}
	if out := s.must(docker, "run", "--rm", "two").stdout; out != "first-build\n" {
		t.Errorf("the second build saw %q in the cache mount", out)
	}
	if r := s.run(docker, "run", "--rm", "one", "ls", "/cache/left"); r.code == 0 {
		t.Errorf("the cache mount's file went into the image: %s", r)
	}
	// docker builder prune (POST /build/prune) empties the cache: tagged
	// images stay, untagged ones only the cache held go, and the next
	// build runs its steps again.
	// A prune asked to keep part of the cache is refused, not made one
	// that keeps nothing.
	for _, keep := range [][]string{{"--filter", "until=24h"}, {"--keep-storage", "1GB"}} {
		if r := s.run(docker, append([]string{"builder", "prune", "-f"}, keep...)...); r.code == 0 || !strings.Contains(r.stderr, "not implemented") {
			t.Errorf("docker builder prune %v: %s", keep, r)
		}
	}
	s.must(docker, "rmi", "one")
	pr := s.must(docker, "builder", "prune", "-af")
	if !strings.Contains(pr.stdout, "Total reclaimed space") {
		t.Errorf("docker builder prune: %s", pr)
	}
	if r := s.run(docker, "image", "inspect", "two"); r.code != 0 {
		t.Errorf("builder prune removed a tagged image: %s", r)
	}
	again := s.runWith(inDir(two, nil, ""), docker, "build", "-t", "two", ".")
	if again.code == 0 || strings.Contains(again.stdout, "Using cache") {
		t.Errorf("after builder prune the cache mount or the step cache is still there: %s", again)
	}
}

// TestBuildSurvivesDaemonKill: lodged killed with -9 in the middle of a
// RUN step; after a restart no build container is left, the old images
// still run, and the next build works.
func TestBuildSurvivesDaemonKill(t *testing.T) {
	s, docker := containerSession(t)
	// The step prints what its Dockerfile line does not contain, so the
	// wait below ends when the step's container runs, not when the build
	// announces the step.
	dir := s.buildDir("slow", map[string]string{"Dockerfile": "FROM busybox\nRUN echo step-started-$((40+2)) && sleep 30\n"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := s.command(ctx, docker, "build", "-t", "slow", ".")
	cmd.Dir = dir
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() bool { return strings.Contains(out.String(), "step-started-42") })
	if ps := s.must(docker, "ps", "-q").stdout; ps == "" {
		t.Errorf("no build container while the RUN step runs")
	}
	pid := s.pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, []int{pid}, 10*time.Second)
	if cmd.Wait() == nil {
		t.Error("docker build succeeded although its daemon was killed")
	}
	s.start()
	if ps := s.must(docker, "ps", "-aq").stdout; ps != "" {
		t.Errorf("build containers left after the restart: %q", ps)
	}
	if r := s.run(docker, "image", "inspect", "slow"); r.code == 0 {
		t.Errorf("the interrupted build's image exists")
	}
	if out := s.must(docker, "run", "--rm", "busybox", "echo", "intact").stdout; out != "intact\n" {
		t.Errorf("busybox after the kill: %q", out)
	}
	next := s.buildDir("next", map[string]string{"Dockerfile": "FROM busybox\nRUN echo fine > /f\nCMD [\"cat\", \"/f\"]\n"})
	if r := s.runWith(inDir(next, nil, ""), docker, "build", "-t", "next", "."); r.code != 0 {
		t.Fatalf("build after the restart: %s", r)
	}
	if out := s.must(docker, "run", "--rm", "next").stdout; out != "fine\n" {
		t.Errorf("image built after the restart: %q", out)
	}
}

// TestBuildDockerPy: docker-py's images.build with a tag and build args.
func TestBuildDockerPy(t *testing.T) {
	python := needClient(t, "/usr/bin/python3", "python3-docker")
	if err := exec.Command(python, "-c", "import docker").Run(); err != nil {
		skipOrFail(t, "docker-py is not installed (apt-get install python3-docker)")
	}
	s, _ := containerSession(t)
	dir := s.buildDir("py", map[string]string{"Dockerfile": "FROM busybox\nARG WHO=nobody\nRUN echo \"built for $WHO\" > /who\nCMD [\"cat\", \"/who\"]\n"})
	script := filepath.Join(s.base, "build.py")
	os.WriteFile(script, []byte(`
import sys
import docker
c = docker.from_env(timeout=120)
img, logs = c.images.build(path=sys.argv[1], tag="pybuilt:1", buildargs={"WHO": "docker-py"}, rm=True)
assert "pybuilt:1" in img.tags, img.tags
assert any("Step" in l.get("stream", "") for l in logs), list(logs)
out = c.containers.run("pybuilt:1", remove=True)
assert out == b"built for docker-py\n", out
try:
    c.images.build(fileobj=__import__("io").BytesIO(b"FROM busybox\nRUN exit 5\n"), tag="pybad")
    raise SystemExit("a failing build did not raise")
except docker.errors.BuildError as e:
    assert "5" in str(e), str(e)
print("OK")
`), 0o644)
	if r := s.run(python, script, dir); r.code != 0 || !strings.HasSuffix(r.stdout, "OK\n") {
		t.Fatalf("docker-py build: %s", r)
	}
}

// TestBuildCompose: docker-compose v1 builds a service's image (`build`
// and `up -d --build`).
func TestBuildCompose(t *testing.T) {
	compose := needClient(t, "docker-compose", "docker-compose")
	s, docker := containerSession(t)
	dir := s.buildDir("composed", map[string]string{
		"docker-compose.yml": "version: \"2.4\"\nservices:\n  app:\n    build:\n      context: .\n      args:\n        FLAVOUR: compose\n    image: composed-app:1\n    command: [\"sh\", \"-c\", \"cat /flavour; sleep 600\"]\n",
		"Dockerfile":         "FROM busybox\nARG FLAVOUR\nRUN echo \"$FLAVOUR\" > /flavour\n",
	})
	dc := func(args ...string) result {
		t.Helper()
		r := s.runWith(inDir(dir, nil, ""), compose, append([]string{"-p", "bp"}, args...)...)
		if r.code != 0 {
			t.Fatalf("docker-compose %v: %s", args, r)
		}
		return r
	}
	dc("build")
	if out := s.must(docker, "run", "--rm", "composed-app:1", "cat", "/flavour").stdout; out != "compose\n" {
		t.Errorf("docker-compose build: %q", out)
	}
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nARG FLAVOUR\nRUN echo \"$FLAVOUR-rebuilt\" > /flavour\n"), 0o644)
	dc("up", "-d", "--build")
	waitFor(t, 20*time.Second, func() bool { return strings.Contains(dc("logs", "app").stdout, "compose-rebuilt") })
	dc("down", "-t", "1")
}

// TestBuildLodgeCLI: lodge build with tags, a Dockerfile elsewhere, build
// args, labels, a target, .dockerignore and --iidfile; a failure exits 1.
func TestBuildLodgeCLI(t *testing.T) {
	s, _ := containerSession(t)
	dir := s.buildDir("lodgeapp", map[string]string{
		"build/Containerfile": "FROM busybox AS one\nARG X\nCOPY . /ctx\nRUN echo \"x=$X\" > /x\nFROM one AS two\nCMD [\"cat\", \"/x\"]\n",
		"keep.txt":            "k",
		"skip.log":            "s",
		".dockerignore":       "*.log\n",
	})
	iid := filepath.Join(s.home, "lodge-iid")
	r := s.runWith(inDir(dir, nil, ""), "lodge", "build", "-t", "lb:1", "-t", "lb:2", "-f", "build/Containerfile",
		"--build-arg", "X=42", "--label", "k=v", "--target", "one", "--iidfile", iid, ".")
	if r.code != 0 || !strings.Contains(r.stdout, "Step 1/") {
		t.Fatalf("lodge build: %s", r)
	}
	if b, _ := os.ReadFile(iid); !imageIDRE.Match(b) {
		t.Errorf("--iidfile: %q", b)
	}
	if out := s.must("lodge", "run", "--rm", "lb:2", "sh", "-c", "cat /x; ls /ctx").stdout; out != "x=42\nbuild\nkeep.txt\n" {
		t.Errorf("lodge build's image: %q", out)
	}
	bad := s.buildDir("lodgebad", map[string]string{"Dockerfile": "FROM busybox\nRUN exit 9\n"})
	if r := s.runWith(inDir(bad, nil, ""), "lodge", "build", "."); r.code != 1 || !strings.Contains(r.stderr, "exit 9") {
		t.Errorf("lodge build of a failing RUN: %s", r)
	}
}

// makesLayer tells whether a step's block of build output is a RUN, COPY
// or WORKDIR step, the ones the cache serves.
func makesLayer(step string) bool {
	_, instr, _ := strings.Cut(step, " : ")
	for _, p := range []string{"RUN ", "COPY ", "WORKDIR "} {
		if strings.HasPrefix(instr, p) {
			return true
		}
	}
	return false
}

// TestBuildWarningKeepsContext: a build whose output starts before its
// context has been read (lodged's warning for a limit it does not apply)
// gets the whole context: Go's HTTP server used to drop the first 256 KiB
// of the request body at the first write, and the Dockerfile read as
// garbage.
func TestBuildWarningKeepsContext(t *testing.T) {
	s, docker := containerSession(t)
	classic := []string{"DOCKER_BUILDKIT=0"}

	// --memory makes lodged write its warning first.
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i*7 + i/251)
	}
	dir := s.buildDir("limits", map[string]string{
		"Dockerfile": "FROM busybox\nCOPY big.bin /big.bin\nRUN md5sum /big.bin\n",
		"big.bin":    string(big),
	})
	r := s.runWith(inDir(dir, classic, ""), docker, "build", "--memory", "64m", "-t", "limits:1", ".")
	if r.code != 0 || !strings.Contains(r.stdout, "is not applied") {
		t.Fatalf("docker build --memory 64m: %s", r)
	}
	sum := fmt.Sprintf("%x", md5.Sum(big))
	if out := s.must(docker, "run", "--rm", "limits:1", "sh", "-c", "md5sum /big.bin").stdout; !strings.HasPrefix(out, sum) {
		t.Errorf("the file COPY took from a context sent while lodged wrote: %q, want md5 %s", out, sum)
	}

}

// TestBuildStepsWhileContextArrives: the classic builder runs the steps
// that need nothing of the context while the client is still sending it.
// The context comes from `docker build -` through a pipe whose last file
// is held back until the first RUN's output shows; a builder that waited
// for the whole context would never print it. The file sent last is then
// what COPY puts in the image, and .dockerignore, sent after the
// Dockerfile, still keeps a file out.
func TestBuildStepsWhileContextArrives(t *testing.T) {
	s, docker := containerSession(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := s.command(ctx, docker, "build", "-t", "streamed:1", "-")
	cmd.Env = append(cmd.Env, "DOCKER_BUILDKIT=0")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	tw := tar.NewWriter(stdin)
	add := func(name, body string) {
		t.Helper()
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
		if err := tw.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	add("Dockerfile", "FROM busybox\nRUN echo first-step-ran-$((6*7))\nCOPY . /ctx/\nRUN cat /ctx/late.txt\n")
	add(".dockerignore", "secret.txt\n")
	add("secret.txt", "must not be sent\n")
	// A few MiB, so that the early part is well past any buffer the CLI
	// or the socket holds before the builder sees it.
	add("early.bin", strings.Repeat("e", 4<<20))

	var out strings.Builder
	seen := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stdout)
		once := false
		for sc.Scan() {
			line := sc.Text()
			out.WriteString(line + "\n")
			if !once && strings.Contains(line, "first-step-ran-42") {
				once = true
				close(seen)
			}
		}
	}()
	select {
	case <-seen:
	case <-time.After(90 * time.Second):
		stdin.Close()
		<-readDone
		_ = cmd.Wait()
		t.Fatalf("the first RUN did not run before the context's end was sent:\n%s\n%s", out.String(), stderr.String())
	}
	add("late.txt", "sent-after-the-first-step\n")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	<-readDone
	if err := cmd.Wait(); err != nil {
		t.Fatalf("docker build -: %v\n%s\n%s", err, out.String(), stderr.String())
	}
	if !strings.Contains(out.String(), "Successfully tagged streamed:1") {
		t.Fatalf("docker build - output:\n%s", out.String())
	}
	got := s.must(docker, "run", "--rm", "streamed:1", "sh", "-c", "cat /ctx/late.txt; ls /ctx").stdout
	if !strings.Contains(got, "sent-after-the-first-step") || !strings.Contains(got, "early.bin") {
		t.Errorf("the image's /ctx: %q, want late.txt's text and early.bin", got)
	}
	if strings.Contains(got, "secret.txt") {
		t.Errorf(".dockerignore did not keep secret.txt out: %q", got)
	}
}

package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// composeV2File is a project as compose v2 users write them: two services
// on a project network, a fixed and an ephemeral published port, a named
// volume, a variable named without a value, a healthcheck that turns
// healthy through its start_interval (its interval is an hour), and a
// service that waits for it to be healthy.
const composeV2File = `services:
  web:
    image: busybox
    command: ["sh", "-c", "echo hello-v2 > /www/index.html; echo MAYBE=$${MAYBE-unset}; httpd -p 8001 -h /www; exec httpd -f -p 8000 -h /www"]
    environment:
      - MAYBE
      - SET=yes
    healthcheck:
      test: ["CMD-SHELL", "wget -qO- http://127.0.0.1:8000/ | grep -q hello"]
      interval: 1h
      start_period: 1h
      start_interval: 200ms
    ports:
      - "127.0.0.1:%d:8000"
      - "127.0.0.1:0:8001"
    volumes:
      - data:/www
    networks: [appnet]
  client:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; until wget -qO- http://web:8000/; do sleep 0.2; done; sleep 600 & wait"]
    depends_on:
      web:
        condition: service_healthy
    networks: [appnet]
networks:
  appnet:
volumes:
  data:
`

// composeV2Session is a container session with compose v2 installed as
// the docker CLI's plugin, so `docker compose` runs it.
func composeV2Session(t *testing.T) (*session, string) {
	t.Helper()
	bin := clientBinary(t, "docker-compose")
	s, docker := compatSession(t)
	dir := filepath.Join(s.home, ".docker", "cli-plugins")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(dir, "docker-compose")
	if err := os.WriteFile(plugin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(s.home, ".docker"), dir, plugin} {
		os.Chown(p, s.u.uid, s.u.gid)
	}
	return s, docker
}

// background is a command left running as the session's user, its
// output collected; stop kills its whole process group (the CLI and the
// plugin it runs).
type background struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan error
}

func (b *background) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

func (b *background) output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

func (s *session) background(dir, name string, args ...string) *background {
	s.t.Helper()
	b := &background{done: make(chan error, 1)}
	b.cmd = s.command(context.Background(), name, args...)
	b.cmd.Dir = dir
	b.cmd.Stdout, b.cmd.Stderr = b, b
	b.cmd.SysProcAttr.Setpgid = true
	if err := b.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	s.t.Cleanup(b.stop)
	return b
}

// running reports whether it has not exited.
func (b *background) running() bool {
	select {
	case err := <-b.done:
		b.done <- err
		return false
	default:
		return true
	}
}

func (b *background) stop() {
	if b.running() {
		syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-b.done
	b.done <- nil
}

// TestComposeV2: docker compose v2 brings the project up in its
// healthcheck's order, its ports answer, an attached `up`, `logs -f` and
// `events` keep streaming instead of exiting after "Attaching to", exec,
// ps and logs work, and `down -v` leaves nothing.
func TestComposeV2(t *testing.T) {
	s, docker := composeV2Session(t)
	port := freePort(t)
	dir := s.buildDir("v2proj", map[string]string{"compose.yaml": fmt.Sprintf(composeV2File, port)})
	dc := func(args ...string) result {
		t.Helper()
		r := s.runWith(inDir(dir, nil, ""), docker, append([]string{"compose", "-p", "lodgev2"}, args...)...)
		if r.code != 0 {
			t.Fatalf("docker compose %v: %s", args, r)
		}
		return r
	}

	dc("up", "-d")
	ps := dc("ps").stdout
	for _, want := range []string{"lodgev2-web-1", "lodgev2-client-1", "(healthy)", fmt.Sprintf("127.0.0.1:%d->8000/tcp", port)} {
		if !strings.Contains(ps, want) {
			t.Errorf("compose ps lacks %q:\n%s", want, ps)
		}
	}
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); body != "hello-v2\n" {
		t.Errorf("fixed port answered %q", body)
	}
	eph := strings.TrimSpace(dc("port", "web", "8001").stdout)
	if !strings.HasPrefix(eph, "127.0.0.1:") || eph == "127.0.0.1:0" {
		t.Fatalf("compose port web 8001: %q", eph)
	}
	if body := httpGet(t, "http://"+eph+"/"); body != "hello-v2\n" {
		t.Errorf("ephemeral port %s answered %q", eph, body)
	}
	if out := dc("exec", "-T", "web", "sh", "-c", "echo ${MAYBE-unset} $SET").stdout; out != "unset yes\n" {
		t.Errorf("compose exec, environment [MAYBE]: %q", out)
	}
	if out := dc("exec", "-T", "client", "sh", "-c", "wget -qO- http://web:8000/").stdout; out != "hello-v2\n" {
		t.Errorf("client reaching web by name: %q", out)
	}
	if out := dc("logs", "web").stdout; !strings.Contains(out, "MAYBE=unset") {
		t.Errorf("compose logs web:\n%s", out)
	}

	up := s.background(dir, docker, "compose", "-p", "lodgev2", "up")
	logs := s.background(dir, docker, "compose", "-p", "lodgev2", "logs", "-f", "web")
	events := s.background(dir, docker, "compose", "-p", "lodgev2", "events")
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(up.output(), "Attaching to") })
	time.Sleep(2 * time.Second) // the old failure came right after "Attaching to"
	dc("exec", "-T", "web", "sh", "-c", "echo streamed-line > /proc/1/fd/1")
	dc("restart", "client")
	streams := []struct {
		name string
		b    *background
		want string
	}{{"up", up, "streamed-line"}, {"logs -f", logs, "streamed-line"}, {"events", events, "container start"},
		{"events", events, "container kill"}, {"events", events, "container stop"}}
	seen := func() bool {
		for _, st := range streams {
			if !strings.Contains(st.b.output(), st.want) {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(30 * time.Second); !seen() && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	for _, st := range streams {
		if !st.b.running() || !strings.Contains(st.b.output(), st.want) {
			t.Errorf("compose %s (running %v) did not stream %q:\n%s", st.name, st.b.running(), st.want, st.b.output())
		}
	}
	for _, b := range []*background{up, logs, events} {
		b.stop()
	}

	dc("down", "-v", "-t", "1")
	s.assertProjectGone(docker, "lodgev2")
}

// TestComposeV2Build: `docker compose build` and `up --build` with the
// classic builder (DOCKER_BUILDKIT=0).
func TestComposeV2Build(t *testing.T) {
	s, docker := composeV2Session(t)
	dir := s.buildDir("v2build", map[string]string{
		"compose.yaml": "services:\n  app:\n    build:\n      context: .\n      args:\n        FLAVOUR: first\n    image: v2built:1\n    command: [\"sh\", \"-c\", \"cat /flavour; sleep 600\"]\n",
		"Dockerfile":   "FROM busybox\nARG FLAVOUR\nRUN echo $FLAVOUR > /flavour\n",
	})
	classic := inDir(dir, []string{"DOCKER_BUILDKIT=0"}, "")
	dc := func(args ...string) result {
		t.Helper()
		r := s.runWith(classic, docker, append([]string{"compose", "-p", "v2b"}, args...)...)
		if r.code != 0 {
			t.Fatalf("docker compose %v: %s", args, r)
		}
		return r
	}
	dc("build")
	if out := s.must(docker, "run", "--rm", "v2built:1", "cat", "/flavour").stdout; out != "first\n" {
		t.Errorf("compose build: %q", out)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nRUN echo rebuilt > /flavour\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dc("up", "-d", "--build")
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(dc("logs", "app").stdout, "rebuilt") })
	dc("down", "-t", "1")
	if out := s.must(docker, "ps", "-aq").stdout; out != "" {
		t.Errorf("containers left after down: %q", out)
	}
}

package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needClient returns the path of a Debian-packaged client (python3,
// docker-compose), skipping locally and failing in CI when it is missing.
func needClient(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		skipOrFail(t, "%s is not installed (apt-get install %s)", name, pkg)
	}
	return p
}

// dockerPyScript drives lodged through docker-py the way a user's script
// does; each step asserts and prints what it saw, and the last line is OK.
const dockerPyScript = `
import sys
import docker

c = docker.from_env(timeout=60)
assert c.ping() is True, "ping"
v = c.version()
print("api", v["ApiVersion"])

with open(sys.argv[1], "rb") as f:
    loaded = c.images.load(f.read())
tags = [t for i in loaded for t in i.tags]
assert "pybox:1" in tags, tags
print("loaded", tags)

out = c.containers.run("pybox:1", "echo hi", remove=True)
assert out == b"hi\n", out

ctr = c.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2; exit 3"], detach=True, name="pydetached")
res = ctr.wait(timeout=30)
assert res["StatusCode"] == 3, res
assert ctr.logs(stdout=True, stderr=False) == b"out\n", ctr.logs(stdout=True, stderr=False)
assert ctr.logs(stdout=False, stderr=True) == b"err\n", ctr.logs(stdout=False, stderr=True)
ctr.reload()
assert ctr.status == "exited", ctr.status
ctr.remove()
assert not c.containers.list(all=True, filters={"name": "pydetached"})

vol = c.volumes.create("pyvol", labels={"by": "docker-py"})
assert vol.name == "pyvol"
assert "pyvol" in [x.name for x in c.volumes.list()]
vol.remove()
assert "pyvol" not in [x.name for x in c.volumes.list()]

net = c.networks.create("pynet", driver="bridge")
assert net.name == "pynet"
assert "pynet" in [x.name for x in c.networks.list()]
net.remove()
assert "pynet" not in [x.name for x in c.networks.list()]

ctr = c.containers.run("busybox", ["sh", "-c", "trap 'exit 0' TERM; sleep 60 & wait"], detach=True)
code, out = ctr.exec_run(["sh", "-c", "echo exec-$((1+2)); exit 4"])
assert (code, out) == (4, b"exec-3\n"), (code, out)
ctr.remove(force=True)
print("OK")
`

// TestDockerPy: docker-py (Debian's python3-docker) pings, loads an image,
// runs containers in the foreground and detached, reads their logs and
// exit codes, creates and removes volumes and networks, and execs.
func TestDockerPy(t *testing.T) {
	python := needClient(t, "/usr/bin/python3", "python3-docker")
	if err := exec.Command(python, "-c", "import docker").Run(); err != nil {
		skipOrFail(t, "docker-py is not installed (apt-get install python3-docker)")
	}
	s, _ := containerSession(t)
	archive := busyboxArchive(t, s.base, "pybox:1", nil)
	script := filepath.Join(s.base, "client.py")
	if err := os.WriteFile(script, []byte(dockerPyScript), 0o644); err != nil {
		t.Fatal(err)
	}
	r := s.run(python, script, archive)
	if r.code != 0 || !strings.HasSuffix(r.stdout, "OK\n") {
		t.Fatalf("docker-py script: %s", r)
	}
}

// composeFile has a web server with a published port, a named volume and
// a healthcheck, and a client that compose starts once the server is
// healthy and that reaches it by service name on the project's network.
const composeFile = `version: "2.4"
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo hello-compose > /www/index.html; exec httpd -f -p 8000 -h /www"]
    healthcheck:
      test: ["CMD-SHELL", "wget -qO- http://127.0.0.1:8000/ | grep -q hello"]
      interval: 200ms
      retries: 50
    ports:
      - "127.0.0.1:%d:8000"
    volumes:
      - data:/www
    networks:
      - appnet
  client:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; until wget -qO- http://web:8000/; do sleep 0.2; done; sleep 600 & wait"]
    depends_on:
      web:
        condition: service_healthy
    networks:
      - appnet
networks:
  appnet:
volumes:
  data:
`

// TestDockerCompose: docker-compose v1 (Debian's docker-compose) brings a
// two-service project up in the order of its healthcheck, the host reaches the published port, the client
// service reaches the web service by name, exec and logs work,
// a forced recreate keeps the port published, and `down -v` removes the
// project's containers, network and volume.
func TestDockerCompose(t *testing.T) {
	compose := needClient(t, "docker-compose", "docker-compose")
	s, docker := containerSession(t)
	port := freePort(t)
	dir := filepath.Join(s.home, "proj")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "docker-compose.yml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(composeFile, port)), 0o644); err != nil {
		t.Fatal(err)
	}
	dc := func(args ...string) result {
		t.Helper()
		return s.must(compose, append([]string{"-f", file, "-p", "lodgeproj"}, args...)...)
	}

	dc("up", "-d")
	ps := dc("ps").stdout
	for _, want := range []string{"lodgeproj_web_1", "lodgeproj_client_1", "Up (healthy)", "127.0.0.1:" + fmt.Sprint(port) + "->8000/tcp"} {
		if !strings.Contains(ps, want) {
			t.Errorf("docker-compose ps lacks %q:\n%s", want, ps)
		}
	}
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); body != "hello-compose\n" {
		t.Errorf("published port answered %q", body)
	}
	if out := s.must(docker, "ps", "--filter", "publish=8000", "--format", "{{.Names}}").stdout; out != "lodgeproj_web_1\n" {
		t.Errorf("ps --filter publish=8000: %q", out)
	}
	waitFor(t, 20*time.Second, func() bool { return strings.Contains(dc("logs", "client").stdout, "hello-compose") })
	if out := dc("exec", "-T", "web", "cat", "/www/index.html").stdout; out != "hello-compose\n" {
		t.Errorf("docker-compose exec: %q", out)
	}
	// Recreating reads the image's ContainerConfig (docker/compose#11742)
	// and carries the published port over to the new container.
	if out := dc("up", "-d", "--force-recreate", "-t", "1").stderr; !strings.Contains(out, "Recreating lodgeproj_web_1 ... done") {
		t.Errorf("docker-compose up --force-recreate:\n%s", out)
	}
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); body != "hello-compose\n" {
		t.Errorf("published port after recreate answered %q", body)
	}
	dc("down", "-v", "-t", "1")

	s.assertProjectGone(docker, "lodgeproj")
}

// assertProjectGone checks what `compose down -v` must leave: no
// container, and no network or volume of the project.
func (s *session) assertProjectGone(docker, project string) {
	s.t.Helper()
	if out := s.must(docker, "ps", "-aq").stdout; strings.TrimSpace(out) != "" {
		s.t.Errorf("containers left after down: %q", out)
	}
	if out := s.must(docker, "network", "ls", "--format", "{{.Name}}").stdout; strings.Contains(out, project) {
		s.t.Errorf("network left after down -v:\n%s", out)
	}
	if out := s.must(docker, "volume", "ls", "--format", "{{.Name}}").stdout; strings.Contains(out, project) {
		s.t.Errorf("volume left after down -v:\n%s", out)
	}
}

// TestDockerComposeAttached: `docker-compose up --exit-code-from`, as CI
// jobs run it, streams the service's output and exits with its code.
func TestDockerComposeAttached(t *testing.T) {
	compose := needClient(t, "docker-compose", "docker-compose")
	s, _ := containerSession(t)
	file := filepath.Join(s.home, "docker-compose.yml")
	job := "services:\n  job:\n    image: busybox\n    command: [\"sh\", \"-c\", \"echo job-ran; exit 3\"]\n"
	if err := os.WriteFile(file, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	r := s.run(compose, "-f", file, "-p", "ci", "up", "--exit-code-from", "job")
	if r.code != 3 || !strings.Contains(r.stdout, "job-ran") || !strings.Contains(r.stdout, "exited with code 3") {
		t.Errorf("docker-compose up --exit-code-from: %s", r)
	}
	s.must(compose, "-f", file, "-p", "ci", "down")
}

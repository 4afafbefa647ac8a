package tests

import (
	"archive/tar"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"
)

// The lodge CLI's own container and image verbs, end to end.
func TestLodgeVerbs(t *testing.T) {
	s, _ := containerSession(t)
	reg := startRegistry(t, "", "")

	if out := s.must("lodge", "images", "--format", "{{.Repository}}:{{.Tag}}").stdout; !strings.Contains(out, "busybox:latest") {
		t.Fatalf("lodge images: %q", out)
	}
	if r := s.must("lodge", "run", "--rm", "busybox", "echo", "hi"); r.stdout != "hi\n" {
		t.Errorf("lodge run: %q", r.stdout)
	}
	if r := s.run("lodge", "run", "--rm", "busybox", "sh", "-c", "echo err >&2; exit 7"); r.code != 7 || !strings.Contains(r.stderr, "err") {
		t.Errorf("lodge run exit code: %s", r)
	}
	id := strings.TrimSpace(s.must("lodge", "run", "-d", "--name", "w1", "-e", "A=1", "busybox", "sh", "-c", "echo A=$A; sleep 100").stdout)
	if len(id) != 64 {
		t.Fatalf("lodge run -d: %q", id)
	}
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(s.run("lodge", "logs", "w1").stdout, "A=1") })
	if ps := s.must("lodge", "ps", "--format", "{{.Names}} {{.State}}").stdout; ps != "w1 running\n" {
		t.Errorf("lodge ps: %q", ps)
	}
	if r := s.must("lodge", "exec", "-u", "1000", "w1", "id", "-u"); r.stdout != "1000\n" {
		t.Errorf("lodge exec: %q", r.stdout)
	}
	if r := s.run("lodge", "exec", "w1", "sh", "-c", "exit 4"); r.code != 4 {
		t.Errorf("lodge exec exit code: %s", r)
	}
	if top := s.must("lodge", "top", "w1").stdout; !strings.Contains(top, "sleep 100") || !strings.Contains(top, "PID") {
		t.Errorf("lodge top: %q", top)
	}
	s.must("lodge", "rename", "w1", "w2")
	if r := s.must("lodge", "inspect", "-f", "{{.Name}} {{.State.Status}} {{.Config.Env}}", "w2"); !strings.HasPrefix(r.stdout, "/w2 running [") || !strings.Contains(r.stdout, " A=1]") {
		t.Errorf("lodge inspect after rename: %q", r.stdout)
	}
	if r := s.run("lodge", "inspect", "w1"); r.code == 0 {
		t.Errorf("the old name still answers: %s", r)
	}
	pid1 := s.must("lodge", "inspect", "-f", "{{.State.Pid}}", "w2").stdout
	s.must("lodge", "restart", "-t", "1", "w2")
	if pid2 := s.must("lodge", "inspect", "-f", "{{.State.Pid}} {{.State.Running}}", "w2").stdout; strings.HasPrefix(pid2, strings.TrimSpace(pid1)+" ") || !strings.HasSuffix(pid2, " true\n") {
		t.Errorf("lodge restart: pid before %q, after %q", pid1, pid2)
	}
	// wait blocks until the container ends and prints its code.
	waited := make(chan result, 1)
	go func() { waited <- s.run("lodge", "wait", "w2") }()
	time.Sleep(300 * time.Millisecond)
	s.must("lodge", "kill", "-s", "TERM", "w2") // sh as pid 1 ignores TERM
	s.must("lodge", "kill", "w2")
	if r := <-waited; r.code != 0 || r.stdout != "137\n" {
		t.Errorf("lodge wait after kill: %s", r)
	}
	if ps := s.must("lodge", "ps", "-a", "--filter", "status=exited", "-q").stdout; strings.TrimSpace(ps) != id[:12] {
		t.Errorf("lodge ps -a --filter status=exited -q: %q", ps)
	}
	if r := s.must("lodge", "container", "prune", "-f"); !strings.Contains(r.stdout, id) {
		t.Errorf("lodge container prune: %q", r.stdout)
	}
	if r := s.run("lodge", "inspect", "--type", "container", id); r.code == 0 {
		t.Errorf("pruned container still there: %s", r)
	}

	// attach follows a running container's output to its end and exits
	// with its code.
	s.must("lodge", "run", "-d", "--name", "a1", "busybox", "sh", "-c", "sleep 1; echo attached; exit 5")
	if r := s.run("lodge", "attach", "a1"); r.code != 5 || r.stdout != "attached\n" {
		t.Errorf("lodge attach: %s", r)
	}
	s.must("lodge", "rm", "a1")

	ref := reg + "/lodge/bb:1"
	s.must("lodge", "tag", "busybox", ref)
	if r := s.must("lodge", "push", ref); !strings.Contains(r.stdout, "digest: sha256:") {
		t.Errorf("lodge push: %q", r.stdout)
	}
	s.must("lodge", "rmi", ref)
	if r := s.must("lodge", "pull", ref); !strings.Contains(r.stdout, "Digest: sha256:") {
		t.Errorf("lodge pull: %q", r.stdout)
	}
	tarPath := filepath.Join(s.base, "lodge-save.tar")
	s.must("lodge", "save", "-o", tarPath, ref)
	s.must("lodge", "rmi", ref)
	if r := s.must("lodge", "load", "-i", tarPath); !strings.Contains(r.stdout, "Loaded image: "+ref) {
		t.Errorf("lodge load: %q", r.stdout)
	}

	if r := s.must("lodge", "history", "busybox"); !strings.Contains(r.stdout, "CREATED BY") || len(strings.Split(strings.TrimSpace(r.stdout), "\n")) < 2 {
		t.Errorf("lodge history: %q", r.stdout)
	}
	if r := s.must("lodge", "image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", "busybox"); r.stdout != "linux/"+goruntime.GOARCH+"\n" {
		t.Errorf("lodge image inspect: %q", r.stdout)
	}
	// import: a root filesystem exported from a container becomes an image.
	rootfs := filepath.Join(s.base, "rootfs.tar")
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	writeTar(t, rootfs, map[string][]byte{"bin/busybox": bb})
	os.Chmod(rootfs, 0o644)
	s.must("lodge", "import", "-c", `CMD ["/bin/busybox","echo","from import"]`, rootfs, "imported:1")
	if r := s.must("lodge", "run", "--rm", "imported:1"); r.stdout != "from import\n" {
		t.Errorf("running an imported image: %q", r.stdout)
	}
	s.must("lodge", "rmi", ref)
	if r := s.must("lodge", "image", "prune", "-a", "-f"); !strings.Contains(r.stdout, "untagged: imported:1") {
		t.Errorf("lodge image prune -a: %q", r.stdout)
	}
	if out := s.must("lodge", "images", "-q").stdout; out != "" {
		t.Errorf("images left after prune -a: %q", out)
	}
}

// writeTar writes a tar of regular, executable files.
func writeTar(t *testing.T, path string, files map[string][]byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

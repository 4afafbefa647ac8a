package tests

import (
	"path/filepath"
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
	s.must("lodge", "stop", "-t", "1", "w1")
	if ps := s.must("lodge", "ps", "-a", "--filter", "status=exited", "-q").stdout; strings.TrimSpace(ps) != id[:12] {
		t.Errorf("lodge ps -a --filter status=exited -q: %q", ps)
	}
	s.must("lodge", "rm", "w1")

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
}

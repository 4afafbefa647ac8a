package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lodge-containers/lodge/hack/fixture"
)

// busyboxArchive writes a docker-archive of a one-layer image holding the
// host's static busybox, tagged ref, and returns its path.
func busyboxArchive(t *testing.T, dir, ref string, cmd []string) string {
	t.Helper()
	if _, err := exec.LookPath("busybox"); err != nil {
		skipOrFail(t, "busybox-static is not installed")
	}
	b, err := fixture.Archive(ref, cmd)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, filepath.Base(ref)+".tar")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadBusybox loads the busybox image into the session's lodged as
// "busybox:latest".
func (s *session) loadBusybox(docker string) {
	s.t.Helper()
	path := busyboxArchive(s.t, s.base, "busybox:latest", nil)
	r := s.must(docker, "load", "-i", path)
	if !bytes.Contains([]byte(r.stdout), []byte("Loaded image: busybox:latest")) {
		s.t.Fatalf("docker load: %s", r)
	}
}

// layerTar is a rootfs tar (for `docker import`).
func layerTar(t *testing.T) []byte {
	t.Helper()
	if _, err := exec.LookPath("busybox"); err != nil {
		skipOrFail(t, "busybox-static is not installed")
	}
	b, err := fixture.Layer()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

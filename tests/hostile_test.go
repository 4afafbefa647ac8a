package tests

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lodge-containers/lodge/hack/fixture"
)

// hostileLayer is a layer tar that tries to write outside its layer: a
// ../ path, an absolute path through a symlink to a host directory, and a
// hard link to a host file.
func hostileLayer(t *testing.T, target string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	add(&tar.Header{Name: "../../../../../../../.." + target + "/dotdot", Typeflag: tar.TypeReg}, "escaped")
	add(&tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: target}, "")
	add(&tar.Header{Name: "link/through-symlink", Typeflag: tar.TypeReg}, "escaped")
	add(&tar.Header{Name: "hard", Typeflag: tar.TypeLink, Linkname: "../../../../../../.." + target + "/victim"}, "")
	tw.Close()
	return buf.Bytes()
}

// A hostile layer must not write outside the store, and must leave the
// user's other images working.
func TestHostileLayerConfined(t *testing.T) {
	s, docker := containerSession(t)
	target := filepath.Join(s.base, "host-dir")
	if err := os.MkdirAll(target, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(target, 0o777)
	if err := os.WriteFile(filepath.Join(target, "victim"), []byte("original"), 0o666); err != nil {
		t.Fatal(err)
	}
	b, err := fixture.ArchiveOf("evil:1", hostileLayer(t, target), []string{"true"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.base, "evil.tar")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := s.run(docker, "load", "-i", path)
	t.Logf("load of a hostile archive: %s", r)
	ents, _ := os.ReadDir(target)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "victim" {
		t.Errorf("the hostile layer wrote into the host directory: %v", names)
	}
	if v, _ := os.ReadFile(filepath.Join(target, "victim")); string(v) != "original" {
		t.Errorf("host file changed: %q", v)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(s.base), "dotdot")); err == nil {
		t.Error("../ entry escaped")
	}
	if r := s.must(docker, "run", "--rm", "busybox", "echo", "intact"); r.stdout != "intact\n" {
		t.Errorf("busybox after a hostile load: %q", r.stdout)
	}
}

// Device nodes in a layer are not created: the user could not make them
// outside lodge either. Like Docker and Podman rootless, the layer still
// loads (base images ship /dev entries) with the nodes left out, and other
// special files (a fifo) still arrive.
func TestLayerDeviceNodesLeftOut(t *testing.T) {
	s, docker := containerSession(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "x/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "x/mem", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1, Mode: 0o666},
		{Name: "x/sda", Typeflag: tar.TypeBlock, Devmajor: 8, Devminor: 0, Mode: 0o666},
		{Name: "x/fifo", Typeflag: tar.TypeFifo, Mode: 0o666},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	b, err := fixture.ArchiveOf("devnodes:1", buf.Bytes(), []string{"true"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.base, "devnodes.tar")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s.must(docker, "load", "-i", path)
	// The image has no shell: borrow the host's busybox-static, read-only.
	out := s.must(docker, "run", "--rm", "-v", "/bin:/hostbin:ro", "devnodes:1", "/hostbin/busybox", "ls", "/x").stdout
	if strings.Join(strings.Fields(out), ",") != "fifo" {
		t.Errorf("/x in the container holds %q, want only the fifo", out)
	}
}

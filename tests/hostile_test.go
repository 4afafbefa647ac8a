package tests

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lodge-containers/lodge/hack/fixture"
)

// hostileCase is one layer tar that tries to write outside its layer,
// after a benign file /ok, so a load that stops before extracting anything
// cannot pass for a confined one.
type hostileCase struct {
	name    string
	entries []*tar.Header
}

func hostileCases(target string) []hostileCase {
	up := "../../../../../../../.."
	return []hostileCase{
		{"dotdot", []*tar.Header{{Name: up + target + "/dotdot", Typeflag: tar.TypeReg}}},
		{"symlink", []*tar.Header{
			{Name: "link", Typeflag: tar.TypeSymlink, Linkname: target},
			{Name: "link/through-symlink", Typeflag: tar.TypeReg},
		}},
		{"hardlink", []*tar.Header{{Name: "hard", Typeflag: tar.TypeLink, Linkname: up + target + "/victim"}}},
		{"relative-symlink", []*tar.Header{
			{Name: "rel", Typeflag: tar.TypeSymlink, Linkname: up + target},
			{Name: "rel/through-symlink", Typeflag: tar.TypeReg},
		}},
		{"symlinked-dir", []*tar.Header{
			{Name: "d", Typeflag: tar.TypeSymlink, Linkname: up + target},
			{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o777},
			{Name: "d/in-dir", Typeflag: tar.TypeReg},
		}},
	}
}

func hostileLayer(t *testing.T, c hostileCase) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body string) {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	add(&tar.Header{Name: "ok", Typeflag: tar.TypeReg}, "ok")
	for _, h := range c.entries {
		add(h, "escaped")
	}
	tw.Close()
	return buf.Bytes()
}

// A hostile layer must not write outside the store, and must leave the
// user's other images working. Each case loads on its own: either the load
// is refused with an error, or it succeeds with the layer (its benign /ok
// included) confined to the image; the host directory is checked after
// each.
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
	for _, c := range hostileCases(target) {
		ref := "evil-" + c.name + ":1"
		b, err := fixture.ArchiveOf(ref, hostileLayer(t, c), []string{"true"})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(s.base, c.name+".tar")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		r := s.run(docker, "load", "-i", path)
		ents, err := os.ReadDir(target)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if strings.Join(names, ",") != "victim" {
			t.Errorf("%s: the hostile layer wrote into the host directory: %v", c.name, names)
		}
		if v, _ := os.ReadFile(filepath.Join(target, "victim")); string(v) != "original" {
			t.Errorf("%s: host file changed: %q", c.name, v)
		}
		if st, err := os.Stat(filepath.Join(target, "victim")); err == nil && st.Sys() != nil {
			if n := st.Sys().(*syscall.Stat_t).Nlink; n != 1 {
				t.Errorf("%s: the host file gained a hard link (%d links)", c.name, n)
			}
		}
		if r.code != 0 {
			// Refused: the error says so and no image is left.
			if strings.TrimSpace(r.stderr) == "" {
				t.Errorf("%s: load failed without an error message", c.name)
			}
			if q := s.run(docker, "image", "inspect", ref); q.code == 0 {
				t.Errorf("%s: a refused load left image %s behind", c.name, ref)
			}
			t.Logf("%s: refused: %s", c.name, strings.TrimSpace(r.stderr))
			continue
		}
		// Loaded: the layer was extracted, inside the image.
		out := s.must(docker, "run", "--rm", "-v", "/bin:/hostbin:ro", ref, "/hostbin/busybox", "cat", "/ok").stdout
		if out != "ok" {
			t.Errorf("%s: loaded, but /ok in the image holds %q", c.name, out)
		}
		t.Logf("%s: loaded, confined", c.name)
	}
	if r := s.must(docker, "run", "--rm", "busybox", "echo", "intact"); r.stdout != "intact\n" {
		t.Errorf("busybox after hostile loads: %q", r.stdout)
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

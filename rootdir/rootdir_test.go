package rootdir

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/lodge-containers/lodge/errdefs"
)

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func mkTar(t *testing.T, ents ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Size: int64(len(e.body))}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return buf.Bytes()
}

// world is a root with the classic escapes planted in it, and a host
// directory beside it that must stay untouched.
func world(t *testing.T) (root, host string, r *Root) {
	base := t.TempDir()
	root, host = filepath.Join(base, "root"), filepath.Join(base, "host")
	for _, d := range []string{root, host, filepath.Join(root, "etc"), filepath.Join(root, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(host, "victim"), []byte("original"), 0o644))
	must(os.WriteFile(filepath.Join(root, "etc", "hostname"), []byte("box\n"), 0o644))
	must(os.Symlink("/", filepath.Join(root, "toroot")))
	must(os.Symlink("../../../../../../../../../../..", filepath.Join(root, "updots")))
	must(os.Symlink(host, filepath.Join(root, "tohost")))
	must(os.Symlink("loop2", filepath.Join(root, "loop1")))
	must(os.Symlink("loop1", filepath.Join(root, "loop2")))
	r, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return root, host, r
}

func hostUntouched(t *testing.T, host string) {
	t.Helper()
	ents, err := os.ReadDir(host)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Errorf("the host directory changed: %v", ents)
	}
	if b, _ := os.ReadFile(filepath.Join(host, "victim")); string(b) != "original" {
		t.Errorf("the host file changed: %q", b)
	}
}

func TestUntarStaysInRoot(t *testing.T) {
	root, host, r := world(t)
	ctx := context.Background()
	// Destinations through symlinks land inside the root.
	for _, dst := range []string{"/toroot/tmp", "/updots/tmp", "/tohost", "/toroot/toroot/"} {
		if err := r.Untar(ctx, dst, bytes.NewReader(mkTar(t, entry{name: "f-" + filepath.Base(dst), body: "x"})), UntarOptions{}); err != nil && dst != "/tohost" {
			t.Errorf("untar to %s: %v", dst, err)
		}
	}
	for _, want := range []string{"tmp/f-tmp", "f-toroot"} {
		if _, err := os.Stat(filepath.Join(root, want)); err != nil {
			t.Errorf("%s is not in the root: %v", want, err)
		}
	}
	// Entries through symlinks, planted or in the archive, and absolute
	// names stay inside: each lands at the path the link names inside the
	// root, or is refused; never on the host.
	for _, c := range []struct {
		entries []entry
		inside  string // where the last entry lands when accepted
	}{
		{[]entry{{name: "toroot/a", body: "1"}}, "a"},
		{[]entry{{name: "/abs", body: "1"}}, "abs"},
		{[]entry{{name: "tohost/b", body: "1"}}, strings.TrimPrefix(host, "/") + "/b"},
		{[]entry{{name: "newlink", typ: tar.TypeSymlink, link: host}, {name: "newlink/c", body: "1"}}, strings.TrimPrefix(host, "/") + "/c"},
	} {
		err := r.Untar(ctx, "/", bytes.NewReader(mkTar(t, c.entries...)), UntarOptions{})
		hostUntouched(t, host)
		last := c.entries[len(c.entries)-1].name
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("untar of %s: %v, want landed inside or refused as invalid or not found", last, err)
			}
			continue
		}
		if b, err := os.ReadFile(filepath.Join(root, c.inside)); err != nil || string(b) != "1" {
			t.Errorf("untar of %s was accepted, but root/%s holds %q (%v)", last, c.inside, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "a")); err != nil {
		t.Errorf("toroot/a did not land at the root's /a: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "abs")); err != nil {
		t.Errorf("/abs did not land at the root's /abs: %v", err)
	}

	// ../ entries and hard links out are refused, and do nothing.
	for _, bad := range [][]entry{
		{{name: "../escape", body: "x"}},
		{{name: "tmp/../../escape", body: "x"}},
		{{name: "h", typ: tar.TypeLink, link: "../../host/victim"}},
		{{name: "dev", typ: tar.TypeChar}},
	} {
		err := r.Untar(ctx, "/tmp", bytes.NewReader(mkTar(t, bad...)), UntarOptions{})
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("untar of %+v: %v, want invalid argument", bad, err)
		}
	}
	hostUntouched(t, host)
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "escape")); err == nil {
		t.Error("a ../ entry escaped")
	}
	// A missing destination, a file, a loop.
	if err := r.Untar(ctx, "/nope", bytes.NewReader(mkTar(t)), UntarOptions{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing destination: %v", err)
	}
	if err := r.Untar(ctx, "/etc/hostname", bytes.NewReader(mkTar(t)), UntarOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("file destination: %v", err)
	}
	if err := r.Untar(ctx, "/loop1", bytes.NewReader(mkTar(t)), UntarOptions{}); err == nil {
		t.Error("looping destination accepted")
	}
	// noOverwriteDirNonDir.
	if err := r.Untar(ctx, "/", bytes.NewReader(mkTar(t, entry{name: "etc", body: "x"})), UntarOptions{NoOverwriteDirNonDir: true}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("file over a directory: %v", err)
	}
}

func TestUntarContent(t *testing.T) {
	root, _, r := world(t)
	tr := mkTar(t,
		entry{name: "d/", typ: tar.TypeDir, mode: 0o750},
		entry{name: "d/sub/f", body: "hello", mode: 0o4755},
		entry{name: "d/l", typ: tar.TypeSymlink, link: "sub/f"},
		entry{name: "d/h", typ: tar.TypeLink, link: "d/sub/f"},
		entry{name: "d/p", typ: tar.TypeFifo, mode: 0o600},
	)
	var gz bytes.Buffer
	if err := r.Untar(context.Background(), "/tmp", io.TeeReader(bytes.NewReader(tr), &gz), UntarOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "tmp/d/l"))
	if err != nil || string(b) != "hello" {
		t.Errorf("through the link: %q %v", b, err)
	}
	fi, _ := os.Stat(filepath.Join(root, "tmp/d/sub/f"))
	if fi == nil || fi.Mode()&os.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("mode: %v", fi)
	}
	if fi, _ := os.Stat(filepath.Join(root, "tmp/d")); fi == nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("directory mode: %v", fi)
	}
	// Overwrite is the default.
	if err := r.Untar(context.Background(), "/tmp", bytes.NewReader(mkTar(t, entry{name: "d/sub/f", body: "again"})), UntarOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "tmp/d/sub/f")); string(b) != "again" {
		t.Errorf("overwrite: %q", b)
	}
}

func names(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h.Name+"|"+h.Linkname)
	}
	sort.Strings(out)
	return out
}

func TestTarAndStat(t *testing.T) {
	root, _, r := world(t)
	os.MkdirAll(filepath.Join(root, "tmp/d/e"), 0o755)
	os.WriteFile(filepath.Join(root, "tmp/d/e/f"), []byte("x"), 0o644)
	os.Link(filepath.Join(root, "tmp/d/e/f"), filepath.Join(root, "tmp/d/g"))
	ctx := context.Background()
	var buf bytes.Buffer
	if err := r.Tar(ctx, "/toroot/tmp/d", &buf, TarOptions{}); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(names(t, buf.Bytes()), " ")
	if got != "d/e/f| d/e/| d/g|d/e/f d/|" {
		t.Errorf("tar of a directory: %s", got)
	}
	buf.Reset()
	if err := r.Tar(ctx, "/tohost", &buf, TarOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := names(t, buf.Bytes()); len(got) != 1 || got[0] != "tohost|"+filepath.Join(filepath.Dir(root), "host") {
		t.Errorf("tar of a symlink: %v", got)
	}
	// Following a link to the host's directory gives the root's view.
	buf.Reset()
	err := r.Tar(ctx, "/tohost/", &buf, TarOptions{})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("tar through a link to a host path: %v %v", err, names(t, buf.Bytes()))
	}
	st, err := r.Stat("/toroot/etc/hostname")
	if err != nil || st.Name != "hostname" || st.Size != 4 || !st.Mode.IsRegular() {
		t.Errorf("stat: %+v %v", st, err)
	}
	st, err = r.Stat("/updots")
	if err != nil || st.Mode&os.ModeSymlink == 0 || st.LinkTarget != "/" {
		t.Errorf("stat of a symlink: %+v %v", st, err)
	}
	if _, err := r.Stat("/missing"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("stat of a missing path: %v", err)
	}
	// An export leaves out what it is told to.
	buf.Reset()
	if err := r.Tar(ctx, "/", &buf, TarOptions{Exclude: func(p string) bool { return p == "/etc" }}); err != nil {
		t.Fatal(err)
	}
	for _, n := range names(t, buf.Bytes()) {
		if strings.HasPrefix(n, "etc") || strings.HasPrefix(n, "/") {
			t.Errorf("export has %s", n)
		}
	}
}

// FuzzEntryPath: whatever the name, an accepted entry lands under dst.
func FuzzEntryPath(f *testing.F) {
	for _, s := range []string{"a", "../a", "a/../../b", "/abs", "./x/./y", "..", "a/..", "\x00"} {
		f.Add(s)
	}
	u := &untar{dst: "/dst"}
	f.Fuzz(func(t *testing.T, name string) {
		p, err := u.entryPath(name)
		if err != nil {
			return
		}
		if p != "/dst" && !strings.HasPrefix(p, "/dst/") {
			t.Fatalf("%q placed at %q", name, p)
		}
	})
}

// FuzzUntar feeds Untar arbitrary archives into a root whose symlinks
// point out of it: whatever it accepts or refuses, nothing outside the
// root changes.
func FuzzUntar(f *testing.F) {
	t := &testing.T{}
	f.Add(mkTar(t, entry{name: "../x", body: "1"}))
	f.Add(mkTar(t, entry{name: "tohost/x", body: "1"}, entry{name: "toroot/y", body: "1"}))
	f.Add(mkTar(t, entry{name: "l", typ: tar.TypeSymlink, link: "/"}, entry{name: "l/z", body: "1"}))
	f.Add(mkTar(t, entry{name: "h", typ: tar.TypeLink, link: "tohost/victim"}))
	f.Add(mkTar(t, entry{name: "updots/tmp/w", body: "1"}, entry{name: "d/", typ: tar.TypeDir}))
	f.Add([]byte("\x1f\x8b garbage"))
	f.Fuzz(func(t *testing.T, archive []byte) {
		_, host, r := world(t)
		r.Untar(context.Background(), "/", bytes.NewReader(archive), UntarOptions{})
		r.Untar(context.Background(), "/updots", bytes.NewReader(archive), UntarOptions{NoOverwriteDirNonDir: true})
		hostUntouched(t, host)
	})
}

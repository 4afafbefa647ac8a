package build

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadContext feeds arbitrary bytes to the context reader: it must
// never panic, never write outside its dir, and never leave a device
// node or fifo. Run with: go test -fuzz=FuzzReadContext ./build/
func FuzzReadContext(f *testing.F) {
	f.Add([]byte("FROM busybox\n"))
	f.Add(tarOf(f, tf{name: "Dockerfile", body: "FROM scratch\n"}, tf{name: "a/b", body: "x"}))
	f.Add(gzipOf(f, tarOf(f, tf{name: "d", typ: tar.TypeDir}, tf{name: "d/f", body: "y"})))
	f.Add(tarOf(f, tf{name: "../x", body: "x"}))
	f.Add(tarOf(f, tf{name: "l", typ: tar.TypeSymlink, link: "/"}, tf{name: "l/x", body: "x"}))
	f.Add(tarOf(f, tf{name: "f", body: "x"}, tf{name: "h", typ: tar.TypeLink, link: "f"}, tf{name: "f", typ: tar.TypeSymlink, link: ".."}))
	f.Add([]byte{0x1f, 0x8b, 0, 0})
	f.Add([]byte("BZh91AY&SY"))

	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "ctx")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		_, _ = unpackContext(context.Background(), bytes.NewReader(data), dir, "Dockerfile")
		entries, err := os.ReadDir(parent)
		if err != nil || len(entries) != 1 {
			t.Fatalf("written beside the context dir: %v %v", entries, err)
		}
		err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type()&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe) != 0 {
				t.Errorf("special file %s", p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

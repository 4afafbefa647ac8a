package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestWriteContextHonoursDockerignore(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"Dockerfile": "FROM busybox\n", ".dockerignore": "# comment\n*.log\nsecret/\nDockerfile\nnode_modules\n!node_modules/keep.txt\n",
		"a.txt": "a", "b.log": "b", "secret/key": "k", "sub/c.log": "c", "node_modules/x.js": "x", "node_modules/keep.txt": "kept",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("a.txt", filepath.Join(dir, "link"))
	var buf bytes.Buffer
	if err := writeContext(&buf, dir, contextOptions{keep: []string{"Dockerfile", ".dockerignore"}}); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want root's", h.Name, h.Uid, h.Gid)
		}
		names = append(names, h.Name)
	}
	sort.Strings(names)
	got := strings.Join(names, " ")
	// *.log is the top level's only, as in Docker; **/*.log would reach sub/.
	want := ".dockerignore Dockerfile a.txt link node_modules/keep.txt sub/ sub/c.log"
	if got != want {
		t.Errorf("context holds %q, want %q", got, want)
	}
}

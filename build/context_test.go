package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lodge-containers/lodge/errdefs"
)

func gzipOf(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestHostileContexts(t *testing.T) {
	tests := []struct {
		name  string
		files []tf
	}{
		{"dot-dot escape", []tf{{name: "../escaped", body: "x"}}},
		{"dot-dot inside a path", []tf{{name: "a/../../escaped", body: "x"}}},
		{"write through a symlink", []tf{
			{name: "link", typ: tar.TypeSymlink, link: "OUTSIDE"},
			{name: "link/escaped", body: "x"},
		}},
		{"write through an absolute symlink", []tf{
			{name: "link", typ: tar.TypeSymlink, link: "/"},
			{name: "link/OUTSIDE/escaped", body: "x"},
		}},
		{"device node", []tf{{name: "dev", typ: tar.TypeChar}}},
		{"fifo", []tf{{name: "fifo", typ: tar.TypeFifo}}},
		{"hard link outside", []tf{{name: "hl", typ: tar.TypeLink, link: "../OUTSIDE/secret"}}},
		{"hard link to an absent file", []tf{{name: "hl", typ: tar.TypeLink, link: "/etc/passwd"}}},
		{"hard link to a later entry", []tf{{name: "hl", typ: tar.TypeLink, link: "f"}, {name: "f", body: "x"}}},
		{"hard link through a symlink", []tf{
			{name: "f", body: "x"},
			{name: "d", typ: tar.TypeSymlink, link: "."},
			{name: "hl", typ: tar.TypeLink, link: "d/f"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			outside := filepath.Join(parent, "OUTSIDE")
			if err := os.Mkdir(outside, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(parent, "ctx", "inner")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			files := append([]tf{{name: "Dockerfile", body: "FROM scratch\n"}}, tt.files...)
			_, err := unpackContext(context.Background(), bytes.NewReader(tarOf(t, files...)), dir, "Dockerfile")
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error %v, want an InvalidArgument", err)
			}
			if !strings.Contains(err.Error(), "invalid build context") {
				t.Errorf("unclear error %q", err)
			}
			entries, _ := os.ReadDir(outside)
			if len(entries) != 1 {
				t.Errorf("written outside: %v", entries)
			}
			for _, p := range []string{filepath.Join(parent, "escaped"), filepath.Join(parent, "ctx", "escaped")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s written", p)
				}
			}
		})
	}
}

func TestContextKeepsSymlinksAndResolvesAbsoluteNames(t *testing.T) {
	dir := t.TempDir()
	_, err := unpackContext(context.Background(), bytes.NewReader(tarOf(t,
		tf{name: "/abs/file", body: "a"},
		tf{name: "link", typ: tar.TypeSymlink, link: "/etc/passwd"},
		tf{name: "ro", typ: tar.TypeDir, mode: 0o555},
		tf{name: "ro/f", body: "x", mode: 0o000},
		tf{name: "hl", typ: tar.TypeLink, link: "abs/file"},
	)), dir, "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "abs", "file")); err != nil || string(b) != "a" {
		t.Errorf("abs/file: %q %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "link")); err != nil || l != "/etc/passwd" {
		t.Errorf("link: %q %v", l, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "hl")); err != nil || string(b) != "a" {
		t.Errorf("hard link: %q %v", b, err)
	}
}

func TestContextForms(t *testing.T) {
	df := "FROM busybox\nENV FORM=1\n"
	tests := []struct {
		name string
		body []byte
		opts Options
	}{
		{"plain tar", tarOf(t, tf{name: "Dockerfile", body: df}), Options{}},
		{"gzip tar", gzipOf(t, tarOf(t, tf{name: "Dockerfile", body: df})), Options{}},
		{"bare Dockerfile", []byte(df), Options{}},
		{"gzip bare Dockerfile", gzipOf(t, []byte(df)), Options{}},
		{"bare Dockerfile, other name", []byte(df), Options{Dockerfile: "sub/My.Dockerfile"}},
		{"tar, other name", tarOf(t, tf{name: "sub/My.Dockerfile", body: df}), Options{Dockerfile: "sub/My.Dockerfile"}},
		{"lower-case dockerfile", tarOf(t, tf{name: "dockerfile", body: df}), Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			id, out, err := h.buildTar(tt.body, tt.opts)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			envIs("PATH=/usr/bin:/bin", "FORM=1")(t, h.fb.image(id).Config)
			if entries, _ := os.ReadDir(filepath.Join(h.b.dir, "contexts")); len(entries) != 0 {
				t.Errorf("context dir left behind: %v", entries)
			}
		})
	}
}

func TestContextErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    []byte
		opts    Options
		class   error
		message string
	}{
		{"no Dockerfile", tarOf(t, tf{name: "x", body: "x"}), Options{}, errdefs.ErrNotFound, "Cannot locate specified Dockerfile: Dockerfile"},
		{"empty body", nil, Options{}, errdefs.ErrInvalidArgument, "cannot be empty"},
		{"syntax error names the line", []byte("FROM busybox\nRUN true\nBOGUS x\n"), Options{}, errdefs.ErrInvalidArgument, "line 3: unknown instruction: BOGUS"},
		{"bad flag names the line", []byte("FROM busybox\n\nCOPY --nope a b\n"), Options{}, errdefs.ErrInvalidArgument, "line 3"},
		{"no FROM", []byte("# nothing\n"), Options{}, errdefs.ErrInvalidArgument, ""},
		{"unknown target", []byte("FROM busybox AS a\n"), Options{Target: "b"}, errdefs.ErrNotFound, "failed to reach build target b in Dockerfile"},
		{"foreign platform", []byte("FROM --platform=linux/s390x busybox\n"), Options{}, errdefs.ErrInvalidArgument, "linux/s390x"},
		{"foreign build platform", []byte("FROM busybox\n"), Options{Platform: "windows/amd64"}, errdefs.ErrInvalidArgument, "native platform"},
		{"missing base", []byte("FROM nothere\n"), Options{}, errdefs.ErrNotFound, "Step 1/1 : FROM nothere"},
		{"bad tag", []byte("FROM busybox\n"), Options{Tags: []string{"UPPER:x"}}, errdefs.ErrInvalidArgument, "invalid tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			_, out, err := h.buildTar(tt.body, tt.opts)
			if !errors.Is(err, tt.class) {
				t.Fatalf("error %v, want class %v\n%s", err, tt.class, out)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q lacks %q", err, tt.message)
			}
		})
	}
}

func TestNativePlatformAccepted(t *testing.T) {
	h := newHarness(t)
	h.mustBuild("FROM --platform=$BUILDPLATFORM busybox\n", Options{Platform: nativePlatform()})
}

func TestDockerignore(t *testing.T) {
	h := newHarness(t)
	files := []tf{
		{name: ".dockerignore", body: "*.log\nsecret/\nDockerfile\n.dockerignore\ndocs\n!docs/keep.md\n"},
		{name: "app.txt", body: "a"},
		{name: "debug.log", body: "l"},
		{name: "secret/key", body: "k"},
		{name: "docs/keep.md", body: "k"},
		{name: "docs/drop.md", body: "d"},
	}
	id, out := h.mustBuild("FROM busybox\nCOPY . /src/\n", Options{}, files...)
	var names []string
	for _, e := range h.fb.lastLayer(id) {
		names = append(names, e.Name)
	}
	want := "[src/ src/app.txt src/docs/ src/docs/keep.md]"
	if got := strings.Join([]string{"[", strings.Join(names, " "), "]"}, ""); got != want {
		t.Errorf("copied %s, want %s\n%s", got, want, out)
	}
	for _, src := range []string{"debug.log", "secret/key", "Dockerfile", ".dockerignore"} {
		_, _, err := h.build("FROM busybox\nCOPY "+src+" /x\n", Options{}, files...)
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("COPY %s: %v, want NotFound", src, err)
		}
	}
}

func TestDockerfileSpecificIgnore(t *testing.T) {
	h := newHarness(t)
	_, _, err := h.buildTar(tarOf(t,
		tf{name: "build/app.Dockerfile", body: "FROM busybox\nCOPY a /a\n"},
		tf{name: "build/app.Dockerfile.dockerignore", body: "a\n"},
		tf{name: ".dockerignore", body: "b\n"},
		tf{name: "a", body: "a"},
	), Options{Dockerfile: "build/app.Dockerfile"})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("a not ignored: %v", err)
	}
}

package build

import (
	"archive/tar"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lodge-containers/lodge/errdefs"
)

func layerSummary(entries []fakeEntry) string {
	var parts []string
	for _, e := range entries {
		s := fmt.Sprintf("%s %o %d:%d", e.Name, e.Mode, e.UID, e.GID)
		if e.Type == tar.TypeSymlink {
			s += " -> " + e.Link
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func TestCopySemantics(t *testing.T) {
	files := []tf{
		{name: "a.txt", body: "a"},
		{name: "b.txt", body: "b", mode: 0o600},
		{name: "dir", typ: tar.TypeDir, mode: 0o750},
		{name: "dir/x", body: "x"},
		{name: "dir/sub/y", body: "y"},
		{name: "dir/link", typ: tar.TypeSymlink, link: "x"},
		{name: "outlink", typ: tar.TypeSymlink, link: "/etc"},
		{name: "toA", typ: tar.TypeSymlink, link: "../../a.txt"},
	}
	tests := []struct {
		name, copy, want string
	}{
		{"file to a new path", "COPY a.txt /new/name", "new/ 755 0:0; new/name 644 0:0"},
		{"file into an existing dir keeps the dir", "COPY a.txt /usr/bin/", "usr/bin/a.txt 644 0:0"},
		{"file into an existing dir without slash", "COPY a.txt /usr/bin", "usr/bin/a.txt 644 0:0"},
		{"through a symlink in the image", "COPY a.txt /bin/", "usr/bin/a.txt 644 0:0"},
		{"dir copies its contents", "COPY dir /d", "d/ 750 0:0; d/link 777 0:0 -> x; d/sub/ 755 0:0; d/sub/y 644 0:0; d/x 644 0:0"},
		{"dir into an existing dir", "COPY dir /etc/", "etc/link 777 0:0 -> x; etc/sub/ 755 0:0; etc/sub/y 644 0:0; etc/x 644 0:0"},
		{"glob", "COPY *.txt /t/", "t/ 755 0:0; t/a.txt 644 0:0; t/b.txt 600 0:0"},
		{"relative to WORKDIR", "WORKDIR /w\nCOPY a.txt .", "w/a.txt 644 0:0"},
		{"chmod", "COPY --chmod=0700 a.txt /x", "x 700 0:0"},
		{"chown by number", "COPY --chown=5:6 a.txt /x/", "x/ 755 5:6; x/a.txt 644 5:6"},
		{"chown user alone", "COPY --chown=7 a.txt /x", "x 644 7:7"},
		{"chown by name", "COPY --chown=app:staff a.txt /x", "x 644 1001:50"},
		{"symlink leading out stays in", "COPY outlink/passwd /p", ""},
		{"symlink climbing out resolves inside", "COPY toA /y", "y 644 0:0"},
		{"heredoc", "COPY <<EOF /h.txt\nhello\nEOF", "h.txt 644 0:0"},
		{"multiple sources into a dir", "COPY a.txt b.txt /m/", "m/ 755 0:0; m/a.txt 644 0:0; m/b.txt 600 0:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			id, out, err := h.build("FROM busybox\n"+tt.copy+"\n", Options{}, files...)
			if tt.want == "" {
				if !errors.Is(err, errdefs.ErrNotFound) {
					t.Fatalf("error %v, want NotFound\n%s", err, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if got := layerSummary(h.fb.lastLayer(id)); got != tt.want {
				t.Errorf("layer\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestCopyErrors(t *testing.T) {
	tests := []struct {
		name, copy string
		class      error
		message    string
	}{
		{"multiple sources need a dir", "COPY a b /x", errdefs.ErrInvalidArgument, "must be a directory and end with a /"},
		{"glob matching nothing", "COPY *.none /x/", errdefs.ErrNotFound, "file not found"},
		{"unknown user", "COPY --chown=nobody a /x", errdefs.ErrInvalidArgument, "unable to find user nobody"},
		{"symbolic chmod", "COPY --chmod=u+x a /x", errdefs.ErrInvalidArgument, "octal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			_, _, err := h.build("FROM busybox\n"+tt.copy+"\n", Options{}, tf{name: "a", body: "a"}, tf{name: "b", body: "b"})
			if !errors.Is(err, tt.class) || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %v, want %v with %q", err, tt.class, tt.message)
			}
		})
	}
}

func TestAddExtractsLocalArchives(t *testing.T) {
	archive := tarOf(t,
		tf{name: "./", typ: tar.TypeDir},
		tf{name: "./pkg/", typ: tar.TypeDir},
		tf{name: "./pkg/bin", body: "#!/bin/sh\n", mode: 0o755},
		tf{name: "etc/", typ: tar.TypeDir, mode: 0o700},
		tf{name: "etc/conf", body: "c"},
	)
	for _, tt := range []struct {
		name string
		body []byte
	}{{"tar", archive}, {"tar.gz", gzipOf(t, archive)}} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			id, _ := h.mustBuild("FROM busybox\nADD a."+tt.name+" /\n", Options{}, tf{name: "a." + tt.name, body: string(tt.body)})
			// etc/ exists in the image and keeps its mode.
			want := "etc/conf 644 0:0; pkg/ 755 0:0; pkg/bin 755 0:0"
			if got := layerSummary(h.fb.lastLayer(id)); got != want {
				t.Errorf("layer\n got %s\nwant %s", got, want)
			}
			// COPY does not extract.
			id, _ = h.mustBuild("FROM busybox\nCOPY a."+tt.name+" /\n", Options{}, tf{name: "a." + tt.name, body: string(tt.body)})
			if got := layerSummary(h.fb.lastLayer(id)); got != "a."+tt.name+" 644 0:0" {
				t.Errorf("COPY layer %s", got)
			}
		})
	}
}

func TestAddURL(t *testing.T) {
	modified := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	body := "downloaded"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/files/tool.tar" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Last-Modified", modified.Format(http.TimeFormat))
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server not on loopback: %s", srv.URL)
	}

	h := newHarness(t)
	df := "FROM busybox\nADD " + srv.URL + "/files/tool.tar /opt/\n"
	id, out := h.mustBuild(df, Options{})
	layer := h.fb.lastLayer(id)
	if got := layerSummary(layer); got != "opt/ 755 0:0; opt/tool.tar 600 0:0" {
		t.Errorf("layer %s\n%s", got, out)
	}
	if layer[1].Body != body {
		t.Errorf("body %q", layer[1].Body)
	}
	// Same bytes: a cache hit; new bytes: the step runs again.
	_, out = h.mustBuild(df, Options{})
	if !strings.Contains(out, "Using cache") {
		t.Errorf("no cache hit:\n%s", out)
	}
	body = "changed"
	_, out = h.mustBuild(df, Options{})
	if strings.Contains(out, "Using cache") {
		t.Errorf("changed download hit the cache:\n%s", out)
	}

	_, _, err := h.build("FROM busybox\nADD "+srv.URL+"/missing /x\n", Options{})
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing URL: %v", err)
	}
}

func TestAddURLModTime(t *testing.T) {
	modified := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", modified.Format(http.TimeFormat))
		fmt.Fprint(w, "x")
	}))
	defer srv.Close()
	h := newHarness(t)
	s := &stageRun{buildRun: &buildRun{b: h.b, work: t.TempDir()}}
	src, err := s.download(t.Context(), srv.URL+"/f", "")
	if err != nil {
		t.Fatal(err)
	}
	if !src.fi.ModTime().Equal(modified) || src.fi.Mode().Perm() != 0o600 || src.base != "f" {
		t.Errorf("mtime %v mode %v base %s", src.fi.ModTime(), src.fi.Mode(), src.base)
	}
}

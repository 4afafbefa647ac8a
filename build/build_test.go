package build

import (
	"archive/tar"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/lodge-containers/lodge/errdefs"
)

const simpleDockerfile = `FROM busybox
RUN echo hi
COPY app.txt /opt/app/
CMD ["/opt/app/app.txt"]
`

func TestSimpleBuild(t *testing.T) {
	h := newHarness(t)
	id, out := h.mustBuild(simpleDockerfile, Options{Tags: []string{"app"}}, tf{name: "app.txt", body: "hello"})

	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("id %q", id)
	}
	for _, want := range []string{
		"Step 1/4 : FROM busybox\n",
		"Step 2/4 : RUN echo hi\n",
		"Step 3/4 : COPY app.txt /opt/app/\n",
		"Step 4/4 : CMD [\"/opt/app/app.txt\"]\n",
		"Successfully built " + id[7:19] + "\n",
		"Successfully tagged app:latest\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if h.fb.tags["app:latest"] != id[7:] {
		t.Errorf("tags %v", h.fb.tags)
	}
	img := h.fb.image(id)
	if got := img.Config.Config.Cmd; len(got) != 1 || got[0] != "/opt/app/app.txt" {
		t.Errorf("Cmd %q", got)
	}
	var createdBy []string
	for _, hst := range img.Config.History {
		createdBy = append(createdBy, hst.CreatedBy)
	}
	wantHist := []*regexp.Regexp{
		regexp.MustCompile(`^/bin/sh -c #\(nop\) ADD file:base in / $`),
		regexp.MustCompile(`^/bin/sh -c echo hi$`),
		regexp.MustCompile(`^/bin/sh -c #\(nop\) COPY file:[0-9a-f]{64} in /opt/app/ $`),
		regexp.MustCompile(`^/bin/sh -c #\(nop\)  CMD \["/opt/app/app.txt"\]$`),
	}
	if len(createdBy) != len(wantHist) {
		t.Fatalf("history %q", createdBy)
	}
	for i, re := range wantHist {
		if !re.MatchString(createdBy[i]) {
			t.Errorf("history[%d] = %q, want %v", i, createdBy[i], re)
		}
	}
	if !img.Config.History[3].EmptyLayer || img.Config.History[2].EmptyLayer {
		t.Errorf("EmptyLayer flags wrong: %+v", img.Config.History)
	}
	if h.fb.runs[0].Cmd[0] != "/bin/sh" || h.fb.runs[0].Cmd[2] != "echo hi" || h.fb.runs[0].Network != "default" {
		t.Errorf("run request %+v", h.fb.runs[0])
	}

	// The COPY layer: only new entries, /opt and /opt/app made 0755,
	// the file owned by root with its context mode.
	entries := h.fb.image(id).Config.RootFS.DiffIDs
	if len(entries) != 3 {
		t.Fatalf("layers %v", entries)
	}
	layer := h.fb.layers[entries[2]]
	want := []fakeEntry{
		{Name: "opt/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "opt/app/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "opt/app/app.txt", Type: tar.TypeReg, Mode: 0o644, Body: "hello"},
	}
	if len(layer) != len(want) {
		t.Fatalf("layer %+v", layer)
	}
	for i := range want {
		if layer[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, layer[i], want[i])
		}
	}
}

func TestRebuildHitsCacheAndKeepsID(t *testing.T) {
	h := newHarness(t)
	files := []tf{{name: "app.txt", body: "hello"}}
	id1, _ := h.mustBuild(simpleDockerfile, Options{}, files...)
	runs, applies, commits := h.fb.callCount("Run"), h.fb.callCount("Apply"), h.fb.callCount("Commit")
	id2, out := h.mustBuild(simpleDockerfile, Options{}, files...)
	if id1 != id2 {
		t.Errorf("rebuild gave %s, first %s", id2, id1)
	}
	if h.fb.callCount("Run") != runs || h.fb.callCount("Apply") != applies || h.fb.callCount("Commit") != commits {
		t.Errorf("rebuild made images: %v", h.fb.calls)
	}
	if n := strings.Count(out, " ---> Using cache"); n != 2 {
		t.Errorf("%d cache hits in:\n%s", n, out)
	}

	// NoCache runs everything again.
	id3, out := h.mustBuild(simpleDockerfile, Options{NoCache: true}, files...)
	if id3 == id1 || strings.Contains(out, "Using cache") || h.fb.callCount("Run") != runs+1 {
		t.Errorf("NoCache hit the cache:\n%s", out)
	}
}

func TestRunFailureReadsLikeDocker(t *testing.T) {
	h := newHarness(t)
	h.fb.onRun = func(req RunRequest) ([]fakeEntry, error) {
		return nil, &ExitError{Code: 1}
	}
	_, _, err := h.build("FROM busybox\nRUN false\n", Options{})
	if err == nil {
		t.Fatal("no error")
	}
	if !strings.Contains(err.Error(), "Step 2/2 : RUN false") ||
		!strings.HasSuffix(err.Error(), "The command '/bin/sh -c false' returned a non-zero code: 1") {
		t.Errorf("error %q", err)
	}
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 1 {
		t.Errorf("ExitError not found in %v", err)
	}
}

func TestMissingCopySource(t *testing.T) {
	h := newHarness(t)
	_, _, err := h.build("FROM busybox\nCOPY x /x\n", Options{})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("error %v is not NotFound", err)
	}
	if !strings.Contains(err.Error(), "COPY failed: file not found in build context or excluded by .dockerignore: stat x: file does not exist") {
		t.Errorf("error %q", err)
	}
}

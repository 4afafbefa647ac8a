package build

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// A build runs the steps that need nothing of the context while the
// context still arrives, and a COPY from it waits for all of it.
func TestBuildRunsBeforeContextArrives(t *testing.T) {
	h := newHarness(t)
	ran := make(chan struct{}, 1)
	h.fb.onRun = func(req RunRequest) ([]fakeEntry, error) {
		if strings.Contains(strings.Join(req.Cmd, " "), "echo first") {
			ran <- struct{}{}
		}
		return nil, nil
	}
	pr, pw := io.Pipe()
	sent := make(chan bool, 1)
	go func() {
		tw := tar.NewWriter(pw)
		write := func(name, body string) {
			_ = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
			_, _ = tw.Write([]byte(body))
			_ = tw.Flush()
		}
		write("Dockerfile", "FROM busybox\nRUN echo first\nCOPY app.txt /app.txt\n")
		// The rest comes only once the first step ran, or after a
		// long while, so that a builder that waits still ends.
		select {
		case <-ran:
			sent <- true
		case <-time.After(20 * time.Second):
			sent <- false
		}
		write("app.txt", "late\n")
		_ = tw.Close()
		_ = pw.Close()
	}()
	var out bytes.Buffer
	id, err := h.b.Build(context.Background(), pr, Options{}, &out)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	if !<-sent {
		t.Errorf("the first RUN did not run before the context's last file was sent")
	}
	var got string
	for _, e := range h.fb.lastLayer(id) {
		if e.Name == "app.txt" {
			got = e.Body
		}
	}
	if got != "late\n" {
		t.Errorf("COPY of the file that came last: %q, want %q (layer %+v)", got, "late\n", h.fb.lastLayer(id))
	}
}

// A context that breaks after its Dockerfile fails the build with the
// context's error, even when no step reads it, and leaves no tag.
func TestContextBrokenAfterDockerfile(t *testing.T) {
	h := newHarness(t)
	good := tarOf(t, tf{name: "Dockerfile", body: "FROM busybox\nRUN true\n"}, tf{name: "a", body: strings.Repeat("x", 4096)})
	// Cut inside the second file's data: the tar ends too early.
	broken := good[:512+512+512+1000]
	_, out, err := h.buildTar(broken, Options{Tags: []string{"t:1"}})
	if err == nil || !strings.Contains(err.Error(), "invalid build context") {
		t.Fatalf("build of a broken context: %v\n%s", err, out)
	}
	if h.fb.callCount("Tag") != 0 {
		t.Errorf("a build whose context broke tagged its image")
	}
}

// A Dockerfile that a later entry of the context replaces is not built
// from its first version.
func TestDockerfileReplacedLater(t *testing.T) {
	h := newHarness(t)
	ctx := tarOf(t,
		tf{name: "Dockerfile", body: "FROM busybox\nRUN echo one\n"},
		tf{name: "x", body: "x"},
		tf{name: "Dockerfile", body: "FROM busybox\nRUN echo two\n"})
	_, out, err := h.buildTar(ctx, Options{})
	if err == nil || !strings.Contains(err.Error(), "changed after it was read") {
		t.Fatalf("build: %v\n%s", err, out)
	}
}

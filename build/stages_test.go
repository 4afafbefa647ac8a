package build

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

const threeStages = `FROM busybox AS one
RUN echo one
FROM busybox AS two
RUN echo two
FROM busybox AS unused
RUN echo unused
FROM busybox
COPY --from=one /etc/passwd /one
COPY --from=1 /etc/group /two
`

func TestIndependentStagesOverlap(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	started := map[string]bool{}
	both := make(chan struct{})
	h.fb.onRun = func(req RunRequest) ([]fakeEntry, error) {
		mu.Lock()
		started[req.Cmd[2]] = true
		if started["echo one"] && started["echo two"] {
			close(both)
		}
		mu.Unlock()
		select {
		case <-both:
			return nil, nil
		case <-time.After(5 * time.Second):
			return nil, errors.New("the other stage did not start while this one ran")
		}
	}
	_, out := h.mustBuild(threeStages, Options{})
	if started["echo unused"] {
		t.Error("a stage the target does not need was built")
	}
	// Each step's lines stay together even though they ran at once.
	for _, s := range []string{"Step 2/7 : RUN echo one\n ---> ", "Step 4/7 : RUN echo two\n ---> "} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

func TestTargetSkipsUnneededStages(t *testing.T) {
	h := newHarness(t)
	_, out := h.mustBuild(threeStages, Options{Target: "two"})
	if h.fb.callCount("Run") != 1 || h.fb.callCount("Run /bin/sh -c echo two") != 1 {
		t.Errorf("runs %v", h.fb.calls)
	}
	if !strings.Contains(out, "Step 1/2 : FROM busybox AS two") {
		t.Errorf("numbering:\n%s", out)
	}
}

func TestStageFromStageAndScratch(t *testing.T) {
	h := newHarness(t)
	id, out := h.mustBuild(`ARG BASE=busybox
FROM ${BASE} AS base
ENV FROM_BASE=1
FROM base AS child
RUN true
FROM scratch
COPY --from=child /etc/passwd /passwd
`, Options{})
	img := h.fb.image(id)
	if len(img.Config.RootFS.DiffIDs) != 1 {
		t.Errorf("scratch image layers %v\n%s", img.Config.RootFS.DiffIDs, out)
	}
	run := h.fb.runs[0]
	if !contains(run.Config.Config.Env, "FROM_BASE=1") {
		t.Errorf("child did not inherit the stage's config: %v", run.Config.Config.Env)
	}
	if layer := h.fb.lastLayer(id); len(layer) != 1 || layer[0].Name != "passwd" || !strings.Contains(layer[0].Body, "app:x:1001") {
		t.Errorf("layer %+v", layer)
	}
}

func TestFailedStageStopsOthers(t *testing.T) {
	h := newHarness(t)
	h.fb.onRun = func(req RunRequest) ([]fakeEntry, error) {
		if req.Cmd[2] == "echo one" {
			return nil, &ExitError{Code: 2}
		}
		return nil, nil
	}
	_, _, err := h.build(threeStages, Options{})
	if err == nil || !strings.Contains(err.Error(), "returned a non-zero code: 2") {
		t.Fatalf("error %v", err)
	}
	if h.fb.callCount("Apply") != 0 {
		t.Error("the final stage ran though a stage it needs failed")
	}
}

func TestCancelledContextStops(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	h.fb.onRun = func(req RunRequest) ([]fakeEntry, error) {
		cancel()
		return nil, ctx.Err()
	}
	var out strings.Builder
	_, err := h.b.Build(ctx, strings.NewReader("FROM busybox\nRUN a\nRUN b\n"), Options{}, &out)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v", err)
	}
	if h.fb.callCount("Run") != 1 {
		t.Errorf("went on after cancel: %v", h.fb.calls)
	}
}

func TestQuietPrintsNothing(t *testing.T) {
	h := newHarness(t)
	_, out := h.mustBuild("FROM busybox\nRUN true\n", Options{Quiet: true, Tags: []string{"x"}})
	if out != "" {
		t.Errorf("quiet printed %q", out)
	}
}

func TestRunOutputStreamed(t *testing.T) {
	h := newHarness(t)
	h.fb.onRun = func(req RunRequest) ([]fakeEntry, error) {
		_, _ = req.Out.Write([]byte("hello from run\n"))
		return nil, nil
	}
	_, out := h.mustBuild("FROM busybox\nRUN echo\n", Options{})
	if !strings.Contains(out, "Step 2/2 : RUN echo\nhello from run\n ---> ") {
		t.Errorf("output:\n%s", out)
	}
}

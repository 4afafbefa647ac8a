package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// stepsRun counts the steps that made an image (not from the cache).
func stepsRun(out string) int {
	return strings.Count(out, " ---> ") - strings.Count(out, " ---> Using cache")*2 - strings.Count(out, "Step 1/")
}

const twoCopies = `FROM busybox
ARG V
RUN echo start
COPY a.txt /a.txt
RUN echo between
COPY b.txt /b.txt
RUN echo $V
`

func TestCacheKeys(t *testing.T) {
	base := []tf{{name: "a.txt", body: "a"}, {name: "b.txt", body: "b"}}
	tests := []struct {
		name    string
		files   []tf
		args    map[string]*string
		wantRun []string // RUN commands that ran again
	}{
		{"nothing changed", base, nil, nil},
		{"edit the second copied file", []tf{{name: "a.txt", body: "a"}, {name: "b.txt", body: "B"}}, nil,
			[]string{"/bin/sh -c echo $V"}},
		{"edit the first copied file", []tf{{name: "a.txt", body: "A"}, {name: "b.txt", body: "b"}}, nil,
			[]string{"/bin/sh -c echo between", "/bin/sh -c echo $V"}},
		{"mode of a copied file", []tf{{name: "a.txt", body: "a", mode: 0o755}, {name: "b.txt", body: "b"}}, nil,
			[]string{"/bin/sh -c echo between", "/bin/sh -c echo $V"}},
		{"file not copied", append(base, tf{name: "c.txt", body: "c"}), nil, nil},
		{"unused build arg", base, map[string]*string{"OTHER": strp("1")}, nil},
		{"used build arg", base, map[string]*string{"V": strp("1")},
			[]string{"/bin/sh -c echo start", "/bin/sh -c echo between", "/bin/sh -c echo $V"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			id1, _ := h.mustBuild(twoCopies, Options{}, base...)
			before := len(h.fb.runs)
			id2, out := h.mustBuild(twoCopies, Options{BuildArgs: tt.args}, tt.files...)
			var ran []string
			for _, r := range h.fb.runs[before:] {
				ran = append(ran, strings.Join(r.Cmd, " "))
			}
			if fmt.Sprint(ran) != fmt.Sprint(tt.wantRun) {
				t.Errorf("ran again %q, want %q\n%s", ran, tt.wantRun, out)
			}
			if (len(tt.wantRun) == 0) != (id1 == id2) {
				t.Errorf("same ID %v, but steps ran %v", id1 == id2, tt.wantRun)
			}
		})
	}
}

func TestMetadataStepsCallNoBackend(t *testing.T) {
	h := newHarness(t)
	_, _ = h.mustBuild("FROM busybox\nRUN true\n", Options{})
	calls := len(h.fb.calls)
	h.mustBuild("FROM busybox\nRUN true\nENV A=1\nLABEL b=2\nUSER app\nEXPOSE 80\nCMD [\"x\"]\nENTRYPOINT [\"y\"]\nSTOPSIGNAL SIGTERM\nARG Z\nVOLUME /v\nSHELL [\"/bin/bash\", \"-c\"]\nHEALTHCHECK NONE\nONBUILD RUN x\nMAINTAINER me\n", Options{})
	var got []string
	for _, c := range h.fb.calls[calls:] {
		got = append(got, strings.Fields(c)[0])
	}
	// Base for FROM, Lookup of the cached RUN, one Commit at the end.
	if fmt.Sprint(got) != "[Base Lookup Commit]" {
		t.Errorf("backend calls %v", got)
	}
}

func TestPrune(t *testing.T) {
	h := newHarness(t)
	id, _ := h.mustBuild("FROM busybox\nRUN --mount=type=cache,target=/c true\nENV A=1\n", Options{})
	if entries, _ := os.ReadDir(filepath.Join(h.b.dir, "cache")); len(entries) == 0 {
		t.Fatal("no cache mount dir made")
	}
	ids, err := h.b.Prune(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || !contains(ids, strings.TrimPrefix(id, "sha256:")) {
		t.Errorf("pruned %v, final %s", ids, id)
	}
	if _, err := os.Stat(filepath.Join(h.b.dir, "cache")); !os.IsNotExist(err) {
		t.Errorf("cache mounts kept: %v", err)
	}
	_, out := h.mustBuild("FROM busybox\nRUN --mount=type=cache,target=/c true\nENV A=1\n", Options{})
	if strings.Contains(out, "Using cache") {
		t.Errorf("cache used after prune:\n%s", out)
	}
}

func TestCacheIndexConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Two index values over one dir stand for two builders.
			if err := (cacheIndex{dir: dir}).put(fmt.Sprint("k", i), fmt.Sprint("id", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	cf, err := cacheIndex{dir: dir}.read()
	if err != nil || len(cf.Entries) != 20 {
		t.Errorf("entries %d, err %v", len(cf.Entries), err)
	}
}

func TestBrokenCacheEntryIsAMiss(t *testing.T) {
	h := newHarness(t)
	h.mustBuild("FROM busybox\nRUN true\n", Options{})
	// The image a cache entry names is gone: the step runs again.
	h.fb.mu.Lock()
	for id := range h.fb.images {
		if id != h.fb.bases["busybox"].ID {
			delete(h.fb.images, id)
		}
	}
	h.fb.mu.Unlock()
	_, out := h.mustBuild("FROM busybox\nRUN true\n", Options{})
	if strings.Contains(out, "Using cache") || h.fb.callCount("Run") != 2 {
		t.Errorf("stale entry used:\n%s", out)
	}
}

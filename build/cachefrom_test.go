package build

import (
	"strings"
	"testing"
)

const cacheFromDockerfile = `FROM busybox
RUN echo one
COPY f /f
RUN echo two
ENV A=1
`

func TestCacheFrom(t *testing.T) {
	h := newHarness(t)
	first, _ := h.mustBuild(cacheFromDockerfile, Options{}, tf{name: "f", body: "x"})

	t.Run("with a LayerReuser every step hits, same ID", func(t *testing.T) {
		b := New(h.fb, t.TempDir()) // an empty local cache
		runs := h.fb.callCount("Run")
		id, out, err := (&harness{t: t, fb: h.fb, b: b}).build(cacheFromDockerfile, Options{CacheFrom: []string{first[7:]}}, tf{name: "f", body: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if h.fb.callCount("Run") != runs || strings.Count(out, "Using cache") != 3 {
			t.Errorf("steps ran:\n%s", out)
		}
		if id != first {
			t.Errorf("id %s, want %s", id, first)
		}
	})
	t.Run("a changed file runs from its COPY", func(t *testing.T) {
		b := New(h.fb, t.TempDir())
		runs := h.fb.callCount("Run")
		_, out, err := (&harness{t: t, fb: h.fb, b: b}).build(cacheFromDockerfile, Options{CacheFrom: []string{first[7:]}}, tf{name: "f", body: "changed"})
		if err != nil {
			t.Fatal(err)
		}
		if h.fb.callCount("Run") != runs+1 || strings.Count(out, "Using cache") != 1 {
			t.Errorf("want one hit and one run:\n%s", out)
		}
	})
	t.Run("without it, the last layer step still hits", func(t *testing.T) {
		b := New(plainBackend{h.fb}, t.TempDir())
		df := "FROM busybox\nCOPY f /f\nENV A=1\n"
		img, _ := h.mustBuild(df, Options{}, tf{name: "f", body: "x"})
		applies := h.fb.callCount("Apply")
		_, out, err := (&harness{t: t, fb: h.fb, b: b}).build(df, Options{CacheFrom: []string{img[7:]}}, tf{name: "f", body: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if h.fb.callCount("Apply") != applies || !strings.Contains(out, "Using cache") {
			t.Errorf("COPY not served:\n%s", out)
		}
	})
}

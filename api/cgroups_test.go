package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/daemon"
	"github.com/lodge-containers/lodge/errdefs"
)

// fakeCgroups records what the routes ask of it.
type fakeCgroups struct {
	opts   daemon.StatsOptions
	update container.UpdateConfig
}

func (f *fakeCgroups) Pause(_ context.Context, ref string) error {
	return errdefs.Conflictf("Container %s is not running", ref)
}
func (f *fakeCgroups) Unpause(context.Context, string) error { return nil }
func (f *fakeCgroups) Update(_ context.Context, _ string, u container.UpdateConfig) (container.UpdateResponse, error) {
	f.update = u
	return container.UpdateResponse{Warnings: []string{"w"}}, nil
}
func (f *fakeCgroups) Stats(_ context.Context, ref string, opts daemon.StatsOptions, send func(container.StatsResponse) error) error {
	f.opts = opts
	for i := 0; i < 2; i++ {
		if err := send(container.StatsResponse{ID: ref}); err != nil || !opts.Stream {
			return err
		}
	}
	return nil
}

func TestCgroupRoutes(t *testing.T) {
	f := &fakeCgroups{}
	s := &Server{mux: http.NewServeMux(), log: quiet()}
	s.addCgroupRoutes(f)
	srv := httptest.NewServer(s)
	defer srv.Close()
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		query           string
		stream, oneShot bool
		samples         int
	}{
		{"", true, false, 2},
		{"?stream=false", false, false, 1},
		{"?stream=0&one-shot=1", false, true, 1},
		{"?stream=1&one-shot=1", true, false, 2},
	} {
		code, body := do("GET", "/containers/c1/stats"+tc.query, "")
		if code != 200 || f.opts.Stream != tc.stream || f.opts.OneShot != tc.oneShot {
			t.Errorf("stats%s: %d, options %+v", tc.query, code, f.opts)
		}
		dec := json.NewDecoder(strings.NewReader(body))
		n := 0
		for {
			var st container.StatsResponse
			if dec.Decode(&st) != nil {
				break
			}
			n++
		}
		if n != tc.samples {
			t.Errorf("stats%s: %d samples, want %d", tc.query, n, tc.samples)
		}
	}
	if code, body := do("POST", "/containers/c1/pause", ""); code != 409 || !strings.Contains(body, "is not running") {
		t.Errorf("pause: %d %s", code, body)
	}
	if code, _ := do("POST", "/containers/c1/unpause", ""); code != 204 {
		t.Errorf("unpause: %d", code)
	}
	code, body := do("POST", "/containers/c1/update", `{"Memory":67108864,"RestartPolicy":{"Name":"always"}}`)
	if code != 200 || !strings.Contains(body, `"Warnings":["w"]`) || f.update.Memory != 64<<20 || f.update.RestartPolicy.Name != "always" {
		t.Errorf("update: %d %s %+v", code, body, f.update)
	}
	if code, _ := do("POST", "/containers/c1/update", `{"Memory":`); code != 400 {
		t.Errorf("update with bad JSON: %d", code)
	}
}

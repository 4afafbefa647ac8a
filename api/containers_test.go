package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// createRecorder keeps the config a create was given; the rest of the
// backend is not used.
type createRecorder struct {
	ContainerBackend
	got   *container.Config
	gotHC *container.HostConfig
}

func (c *createRecorder) Create(_ context.Context, _ string, cfg *container.Config, hc *container.HostConfig, _ *network.NetworkingConfig) (container.CreateResponse, error) {
	c.got, c.gotHC = cfg, hc
	return container.CreateResponse{ID: "x"}, nil
}

// TestCreateStartInterval: a healthcheck's StartInterval is kept from API
// 1.44 on and dropped before, as Docker does.
func TestCreateStartInterval(t *testing.T) {
	rec := &createRecorder{}
	srv := httptest.NewServer(NewServer(Backends{Containers: rec}, quiet()))
	defer srv.Close()
	body := `{"Image":"busybox","Healthcheck":{"Test":["CMD","true"],"StartInterval":200000000}}`
	for prefix, want := range map[string]time.Duration{"/v1.44": 200 * time.Millisecond, "/v1.51": 200 * time.Millisecond, "/v1.43": 0} {
		resp, err := http.Post(srv.URL+prefix+"/containers/create", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || rec.got == nil || rec.got.Healthcheck.StartInterval != want {
			t.Errorf("%s: status %d, config %+v, want StartInterval %v", prefix, resp.StatusCode, rec.got, want)
		}
	}
}

// TestCreateForceRecursiveOldAPI: a client older than API 1.44 asking for
// a recursively read-only bind is refused, as Docker refuses it, rather
// than given the top-only read-only mount of its API.
func TestCreateForceRecursiveOldAPI(t *testing.T) {
	srv := httptest.NewServer(NewServer(Backends{Containers: &createRecorder{}}, quiet()))
	defer srv.Close()
	body := `{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"/s","Target":"/t","ReadOnly":true,"BindOptions":{"ReadOnlyForceRecursive":true}}]}}`
	for prefix, want := range map[string]int{"/v1.43": http.StatusBadRequest, "/v1.44": http.StatusCreated} {
		resp, err := http.Post(srv.URL+prefix+"/containers/create", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == http.StatusBadRequest && !strings.Contains(string(b), "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer")) {
			t.Errorf("%s: %d %s, want %d", prefix, resp.StatusCode, b, want)
		}
	}
}

// TestCreateAnnotationsOldAPI: annotations came with API 1.43; an older
// client's are dropped, as Docker drops them.
func TestCreateAnnotationsOldAPI(t *testing.T) {
	rec := &createRecorder{}
	srv := httptest.NewServer(NewServer(Backends{Containers: rec}, quiet()))
	defer srv.Close()
	body := `{"Image":"busybox","HostConfig":{"Annotations":{"k":"v"}}}`
	for prefix, want := range map[string]int{"/v1.42": 0, "/v1.43": 1} {
		resp, err := http.Post(srv.URL+prefix+"/containers/create", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || rec.gotHC == nil || len(rec.gotHC.Annotations) != want {
			t.Errorf("%s: status %d, host config %+v, want %d annotations", prefix, resp.StatusCode, rec.gotHC, want)
		}
	}
}

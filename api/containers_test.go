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
	gotNC *network.NetworkingConfig
}

func (c *createRecorder) Create(_ context.Context, _ string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (container.CreateResponse, error) {
	c.got, c.gotHC, c.gotNC = cfg, hc, nc
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

// TestCreateContainerWideMAC: Config.MacAddress of clients before API 1.44
// becomes the MAC of the endpoint on the container's network (an
// endpoint's own is ignored then); later it is deprecated, with a warning.
func TestCreateContainerWideMAC(t *testing.T) {
	rec := &createRecorder{}
	srv := httptest.NewServer(NewServer(Backends{Containers: rec}, quiet()))
	defer srv.Close()
	for _, tc := range []struct {
		prefix, body    string
		status          int
		network, mac    string
		warning, errMsg string
	}{
		{prefix: "/v1.43", body: `{"Image":"b","MacAddress":"02:42:ac:11:00:99"}`, status: 201, network: "bridge", mac: "02:42:ac:11:00:99"},
		{prefix: "/v1.43", body: `{"Image":"b","MacAddress":"02:42:ac:11:00:99","HostConfig":{"NetworkMode":"mynet"}}`, status: 201, network: "mynet", mac: "02:42:ac:11:00:99"},
		{prefix: "/v1.43", body: `{"Image":"b","NetworkingConfig":{"EndpointsConfig":{"bridge":{"MacAddress":"02:42:ac:11:00:98"}}}}`, status: 201, network: "bridge", mac: ""},
		{prefix: "/v1.43", body: `{"Image":"b","MacAddress":"02:42:ac:11:00:99","HostConfig":{"NetworkMode":"host"}}`, status: 400, errMsg: "conflicting options: mac-address and the network mode"},
		{prefix: "/v1.43", body: `{"Image":"b","MacAddress":"nope"}`, status: 400, errMsg: "invalid MAC address"},
		{prefix: "/v1.51", body: `{"Image":"b","MacAddress":"02:42:ac:11:00:99"}`, status: 201, network: "bridge", mac: "02:42:ac:11:00:99", warning: "container-wide MacAddress field is now deprecated"},
		{prefix: "/v1.51", body: `{"Image":"b","MacAddress":"02:42:ac:11:00:99","NetworkingConfig":{"EndpointsConfig":{"bridge":{"MacAddress":"02:42:ac:11:00:98"}}}}`, status: 400, errMsg: "must match the endpoint-specific MAC address"},
	} {
		rec.gotNC = nil
		resp, err := http.Post(srv.URL+tc.prefix+"/containers/create", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.errMsg) || !strings.Contains(string(b), tc.warning) {
			t.Errorf("%s %s: %d %s", tc.prefix, tc.body, resp.StatusCode, b)
			continue
		}
		if tc.status != 201 {
			continue
		}
		var got string
		if rec.gotNC != nil && rec.gotNC.EndpointsConfig[tc.network] != nil {
			got = rec.gotNC.EndpointsConfig[tc.network].MacAddress.String()
		}
		if got != tc.mac {
			t.Errorf("%s %s: endpoint %s MAC %q, want %q", tc.prefix, tc.body, tc.network, got, tc.mac)
		}
	}
}

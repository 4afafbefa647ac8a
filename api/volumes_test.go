package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/volume"

	dvolume "github.com/lodge-containers/lodge/daemon/volume"
)

// The volume routes over the real volume service in a temp dir: statuses
// and bodies as the docker CLI reads them.
func TestVolumeRoutes(t *testing.T) {
	vols, err := dvolume.New(t.TempDir(), quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewServer(Backends{Volumes: vols}, quiet()))
	defer srv.Close()
	do := func(method, path, body string) (int, string) {
		t.Helper()
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
	for _, tt := range []struct {
		method, path, body string
		status             int
		bodyHas            string
	}{
		{"POST", "/v1.51/volumes/create", `{"Name":"data","Labels":{"team":"a"}}`, 201, `"Mountpoint":`},
		{"POST", "/volumes/create", `{"Name":"data"}`, 201, `"team":"a"`}, // the existing one
		{"POST", "/volumes/create", `{"Name":"../etc"}`, 400, "invalid characters"},
		{"POST", "/volumes/create", `{"Name":"x\u0000y"}`, 400, "invalid characters"},
		{"POST", "/volumes/create", `{"Name":"n","Driver":"nfs"}`, 404, `create n: error looking up volume plugin nfs: plugin \"nfs\" not found`},
		{"POST", "/volumes/create", `{"Name":"nv","DriverOpts":{"type":"nfs","device":":/x"}}`, 501, "nfs"},
		{"POST", "/volumes/create", `{"Name":"bad","DriverOpts":{"type":"tmpfs","o":"size=1m,exec"}}`, 400, "not one lodge passes on"},
		{"POST", "/volumes/create", `{"Name":"tv","DriverOpts":{"type":"tmpfs","device":"tmpfs","o":"size=1m"}}`, 201, `"type":"tmpfs"`},
		{"POST", "/volumes/create", `not json`, 400, "invalid JSON"},
		{"GET", "/volumes/data", "", 200, `"Driver":"local"`},
		{"GET", "/volumes/missing", "", 404, "no such volume"},
		{"GET", "/volumes?filters=" + url.QueryEscape(`{"label":{"team=a":true}}`), "", 200, `"Name":"data"`},
		{"GET", "/volumes?filters=" + url.QueryEscape(`{"bogus":{"x":true}}`), "", 400, "invalid filter"},
		{"GET", "/volumes?filters=" + url.QueryEscape(`{"dangling":{"maybe":true}}`), "", 400, "invalid filter"},
		{"POST", "/volumes/prune", "", 200, `"VolumesDeleted":[]`},
		{"DELETE", "/volumes/missing", "", 404, "no such volume"},
		{"DELETE", "/volumes/missing?force=1", "", 204, ""},
		{"DELETE", "/volumes/data", "", 204, ""},
		{"POST", "/volumes/prune?filters=" + url.QueryEscape(`{"all":{"true":true}}`), "", 200, `"VolumesDeleted":["tv"]`},
		// Before API 1.42 prune took named volumes too.
		{"POST", "/volumes/create", `{"Name":"old"}`, 201, `"Name":"old"`},
		{"POST", "/v1.42/volumes/prune", "", 200, `"VolumesDeleted":[]`},
		{"POST", "/v1.41/volumes/prune", "", 200, `"VolumesDeleted":["old"]`},
	} {
		status, body := do(tt.method, tt.path, tt.body)
		if status != tt.status || !strings.Contains(body, tt.bodyHas) {
			t.Errorf("%s %s: %d %s; want %d with %q", tt.method, tt.path, status, body, tt.status, tt.bodyHas)
		}
	}
	_, body := do("GET", "/volumes", "")
	var list volume.ListResponse
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list.Volumes) != 0 || list.Warnings == nil {
		t.Errorf("list after removals: %s %v", body, err)
	}
}

func TestDecodeJSONLikeDocker(t *testing.T) {
	var v struct{ Name string }
	for _, tc := range []struct {
		ct, body, err string
	}{
		{"application/json", `{"Name":"a"}`, ""},
		{"application/json; charset=utf-8", `{"Name":"a"}`, ""},
		{"", "", ""},
		{"text/plain", `{"Name":"a"}`, "unsupported Content-Type header (text/plain): must be 'application/json'"},
		{"", `{"Name":"a"}`, "malformed Content-Type header (): mime: no media type"},
		{"text/plain", "", "unsupported Content-Type header (text/plain): must be 'application/json'"},
		{"application/json", `{"Name":"a"} {"Name":"b"}`, "unexpected content after JSON"},
		{"application/json", `{"Name":`, "invalid JSON"},
	} {
		req := httptest.NewRequest("POST", "/x", strings.NewReader(tc.body))
		if tc.ct != "" {
			req.Header.Set("Content-Type", tc.ct)
		}
		err := decodeJSON(httptest.NewRecorder(), req, &v)
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q %q: err = %v, want %q", tc.ct, tc.body, err, tc.err)
		}
		if err != nil && statusOf(err) != 400 {
			t.Errorf("%q %q: status %d, want 400", tc.ct, tc.body, statusOf(err))
		}
	}
}

func TestDecodeJSONRefusesHugeBodiesUnread(t *testing.T) {
	req := httptest.NewRequest("POST", "/x", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = maxJSONBody + 1
	var v map[string]any
	if err := decodeJSON(httptest.NewRecorder(), req, &v); err == nil || statusOf(err) != 400 || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a body over the limit: %v", err)
	}
}

package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/system"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/paths"
	"github.com/lodge-containers/lodge/version"
)

type fakeSystem struct{ err error }

func (f fakeSystem) Info(context.Context) (system.Info, error) {
	return system.Info{Name: "fake", ServerVersion: "x"}, f.err
}

func (f fakeSystem) Version(context.Context) (system.VersionResponse, error) {
	return system.VersionResponse{Version: "x", APIVersion: version.APIVersion}, f.err
}

var _ SystemBackend = fakeSystem{}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestRouting(t *testing.T) {
	srv := httptest.NewServer(NewServer(Backends{System: fakeSystem{}}, quiet()))
	defer srv.Close()
	tests := []struct {
		method, path string
		status       int
		bodyHas      string
	}{
		{"GET", "/_ping", 200, "OK"},
		{"HEAD", "/_ping", 200, ""},
		{"GET", "/v1.24/_ping", 200, "OK"},
		{"GET", "/v1.51/info", 200, `"Name":"fake"`},
		{"GET", "/v1.44/version", 200, `"ApiVersion":"1.51"`},
		{"GET", "/version", 200, `"Version":"x"`},
		{"GET", "/plugins", 200, "[]"},
		{"GET", "/v1.50/plugins", 200, "[]"},
		{"GET", "/v1.23/info", 400, "too old"},
		{"GET", "/v1.99/info", 400, "too new"},
		{"GET", "/v1.51/containers/json", 501, "lodge does not implement GET /containers/json"},
		{"POST", "/swarm/init", 501, "does not implement"},
		{"GET", "/no/such/route", 501, "does not implement"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.status, b)
			}
			if !strings.Contains(string(b), tt.bodyHas) {
				t.Errorf("body %q lacks %q", b, tt.bodyHas)
			}
			if resp.StatusCode >= 400 {
				var m map[string]string
				if err := json.Unmarshal(b, &m); err != nil || m["message"] == "" {
					t.Errorf("error body is not {\"message\":...}: %s", b)
				}
			}
			if got := resp.Header.Get("Api-Version"); got != version.APIVersion {
				t.Errorf("Api-Version %q", got)
			}
			if strings.HasSuffix(tt.path, "_ping") && resp.Header.Get("OSType") != "linux" {
				t.Errorf("OSType %q", resp.Header.Get("OSType"))
			}
		})
	}
}

func TestErrorStatuses(t *testing.T) {
	for class, want := range map[error]int{
		errdefs.ErrNotFound:         404,
		errdefs.ErrConflict:         409,
		errdefs.ErrInvalidArgument:  400,
		errdefs.ErrPermissionDenied: 403,
		errdefs.ErrNotImplemented:   501,
		errdefs.ErrUnavailable:      503,
		errors.New("boom"):          500,
	} {
		srv := httptest.NewServer(NewServer(Backends{System: fakeSystem{err: errdefs.Class(class, errors.New("boom"))}}, quiet()))
		resp, err := http.Get(srv.URL + "/info")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%v: status %d, want %d", class, resp.StatusCode, want)
		}
		srv.Close()
	}
}

func TestOwnerOnlyRefusesOtherUID(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ol := OwnerOnly(l, 4242, quiet()).(*paths.OwnerListener)
	calls := 0
	ol.PeerUID = func(c net.Conn) (int, error) {
		calls++
		if calls == 1 {
			return 1001, nil // a stranger first
		}
		return 4242, nil
	}
	go http.Serve(ol, NewServer(Backends{System: fakeSystem{}}, quiet()))
	defer ol.Close()

	client := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := client.Get("http://lodge/_ping")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(b), "uid 1001 is not the owner") {
		t.Fatalf("stranger got %d %s", resp.StatusCode, b)
	}
	resp, err = client.Get("http://lodge/_ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("owner got %d", resp.StatusCode)
	}
}

func TestPeerUIDReadsRealCredentials(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := net.Dial("unix", sock)
		if err == nil {
			defer c.Close()
			io.ReadAll(c)
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	uid, err := peerUID(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := currentUID(); uid != want {
		t.Errorf("peer uid %d, want %d", uid, want)
	}
}

func TestSwarmRoutesLikeNoSwarm(t *testing.T) {
	s := NewServer(Backends{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, tc := range []struct {
		method, path string
		status       int
		says         string
	}{
		{"GET", "/v1.51/swarm", 503, "not a swarm manager"},
		{"POST", "/v1.51/swarm/leave?force=1", 503, "not part of a swarm"},
		{"GET", "/v1.51/nodes", 503, "not a swarm manager"},
		{"GET", "/v1.51/services/web", 503, "not a swarm manager"},
		{"POST", "/v1.51/swarm/init", 501, "swarm mode"},
	} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.says) {
			t.Errorf("%s %s = %d %s, want %d with %q", tc.method, tc.path, rec.Code, rec.Body, tc.status, tc.says)
		}
	}
}

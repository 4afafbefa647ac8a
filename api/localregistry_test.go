package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/lodge-containers/lodge/errdefs"
)

// fakeLocalImages holds one image, "docker.io/team/app:1".
type fakeLocalImages struct{ ImageBackend } // the image routes are not called

var (
	fakeManifest = []byte(`{"schemaVersion":2}`)
	fakeBlob     = "layer-bytes"
)

func (fakeLocalImages) LocalManifest(ref string) ([]byte, digest.Digest, error) {
	if ref == "docker.io/team/app:1" || ref == digest.FromBytes(fakeManifest).String() {
		return fakeManifest, digest.FromBytes(fakeManifest), nil
	}
	return nil, "", errdefs.NotFoundf("no local image %s", ref)
}

func (fakeLocalImages) LocalBlob(_ context.Context, d digest.Digest) (io.ReadCloser, int64, error) {
	if d != digest.FromString(fakeBlob) {
		return nil, 0, errdefs.NotFoundf("no blob")
	}
	return io.NopCloser(strings.NewReader(fakeBlob)), int64(len(fakeBlob)), nil
}

func TestLocalRegistryPaths(t *testing.T) {
	srv := httptest.NewServer(NewServer(Backends{Images: fakeLocalImages{}, Build: &fakeBuilds{}, BuildKit: &fakeBuildKit{t: t}}, quiet()))
	defer srv.Close()
	md := digest.FromBytes(fakeManifest).String()
	for _, tt := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/lodge/registry/docker.io/team/app/manifests/1?ns=docker.io", 200, string(fakeManifest)},
		{"HEAD", "/lodge/registry/docker.io/team/app/manifests/1", 200, ""},
		{"GET", "/lodge/registry/docker.io/team/app/manifests/" + md, 200, string(fakeManifest)},
		{"GET", "/lodge/registry/docker.io/team/other/manifests/1", 404, ""},
		{"GET", "/lodge/registry/docker.io/team/app/blobs/" + digest.FromString(fakeBlob).String(), 200, fakeBlob},
		{"GET", "/lodge/registry/docker.io/team/app/blobs/sha256:nothex", 400, ""},
		{"GET", "/lodge/registry/docker.io/team/app/tags/list", 404, ""},
	} {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || (tt.status == 200 && string(b) != tt.body) {
			t.Errorf("%s %s: %d %q", tt.method, tt.path, resp.StatusCode, b)
		}
		if tt.status == 200 && strings.Contains(tt.path, "/manifests/") && resp.Header.Get("Docker-Content-Digest") != md {
			t.Errorf("%s %s: digest header %q", tt.method, tt.path, resp.Header.Get("Docker-Content-Digest"))
		}
	}
}

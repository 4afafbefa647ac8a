package api

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lodge-containers/lodge/daemon"
	"github.com/lodge-containers/lodge/errdefs"
)

// LocalRegistryBackend is the image store seen read-only through the
// registry protocol. lodge-buildkitd puts it before every registry it
// pulls from, so that `FROM` an image that is only in lodge's store works
// as it does with Docker's BuildKit. (*daemon.Images fits.)
type LocalRegistryBackend interface {
	// LocalManifest returns the manifest of a name or of a digest it
	// returned before; NotFound when there is no such image.
	LocalManifest(ref string) ([]byte, digest.Digest, error)
	// LocalBlob opens a config or layer of such a manifest.
	LocalBlob(ctx context.Context, d digest.Digest) (io.ReadCloser, int64, error)
}

var _ LocalRegistryBackend = (*daemon.Images)(nil)

// localRegistryPrefix is outside Docker's API: no client of Docker's asks
// for it. The socket is the user's own, and everything served here `docker
// save` gives the user anyway.
const localRegistryPrefix = "/lodge/registry/"

// addLocalRegistryRoutes serves GET and HEAD on
// /lodge/registry/HOST/REPO/manifests/REF and .../blobs/DIGEST, the paths
// a registry client builds from a host path of /lodge/registry/HOST.
func (s *Server) addLocalRegistryRoutes(b LocalRegistryBackend) {
	s.handle("GET "+localRegistryPrefix+"{rest...}", func(w http.ResponseWriter, r *http.Request) error {
		rest := r.PathValue("rest")
		host, rest, _ := strings.Cut(rest, "/")
		if i := strings.LastIndex(rest, "/manifests/"); i > 0 {
			ref := rest[i+len("/manifests/"):]
			name := host + "/" + rest[:i]
			if _, err := digest.Parse(ref); err != nil {
				name += ":" + ref
			} else {
				name = ref
			}
			body, dgst, err := b.LocalManifest(name)
			if err != nil {
				return err
			}
			h := w.Header()
			h.Set("Content-Type", ocispec.MediaTypeImageManifest)
			h.Set("Docker-Content-Digest", dgst.String())
			h.Set("Content-Length", strconv.Itoa(len(body)))
			if r.Method == http.MethodHead {
				return nil
			}
			_, err = w.Write(body)
			return err
		}
		if i := strings.LastIndex(rest, "/blobs/"); i > 0 {
			d, err := digest.Parse(rest[i+len("/blobs/"):])
			if err != nil {
				return errdefs.InvalidArgumentf("invalid digest: %v", err)
			}
			rc, size, err := b.LocalBlob(r.Context(), d)
			if err != nil {
				return err
			}
			defer rc.Close()
			h := w.Header()
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Docker-Content-Digest", d.String())
			h.Set("Content-Length", strconv.FormatInt(size, 10))
			if r.Method == http.MethodHead {
				return nil
			}
			_, err = io.Copy(w, rc)
			return err
		}
		return errdefs.NotFoundf("no registry route %s", r.URL.Path)
	})
}

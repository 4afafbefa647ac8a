package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/moby/moby/api/types/system"
)

// SystemBackend answers /info and /version.
type SystemBackend interface {
	Info(ctx context.Context) (system.Info, error)
	Version(ctx context.Context) (system.VersionResponse, error)
}

// addSystemRoutes serves /_ping, /info and /version. buildKit says whether
// BuildKit is served: /_ping's Builder-Version "2" is what makes compose v2
// build through BuildKit (the docker CLI uses buildx whenever it is
// installed, whatever the daemon says).
func (s *Server) addSystemRoutes(b SystemBackend, buildKit bool) {
	builder := "1"
	if buildKit {
		builder = "2"
	}
	ping := func(w http.ResponseWriter, r *http.Request) error {
		h := w.Header()
		h.Set("OSType", "linux")
		h.Set("Builder-Version", builder)
		h.Set("Docker-Experimental", "false")
		h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
		h.Set("Pragma", "no-cache")
		if r.Method == http.MethodHead {
			h.Set("Content-Type", "text/plain; charset=utf-8")
			h.Set("Content-Length", "0")
			return nil
		}
		h.Set("Content-Type", "text/plain; charset=utf-8")
		_, err := w.Write([]byte("OK"))
		return err
	}
	s.handle("GET /_ping", ping)
	s.handle("HEAD /_ping", ping)
	s.handle("GET /version", func(w http.ResponseWriter, r *http.Request) error {
		v, err := b.Version(r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	})
	s.handle("GET /info", func(w http.ResponseWriter, r *http.Request) error {
		info, err := b.Info(r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, info)
		return nil
	})
	// lodge has no plugins; test suites list them before every test.
	s.handle("GET /plugins", func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		return json.NewEncoder(w).Encode([]struct{}{})
	})
}

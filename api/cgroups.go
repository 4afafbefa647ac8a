package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/daemon"
)

// CgroupBackend pauses, limits and samples containers through their
// cgroups. (daemon.ContainerAPI fits.)
type CgroupBackend interface {
	Pause(ctx context.Context, ref string) error
	Unpause(ctx context.Context, ref string) error
	Update(ctx context.Context, ref string, u container.UpdateConfig) (container.UpdateResponse, error)
	Stats(ctx context.Context, ref string, opts daemon.StatsOptions, send func(container.StatsResponse) error) error
}

var _ CgroupBackend = daemon.ContainerAPI{}

func (s *Server) addCgroupRoutes(b CgroupBackend) {
	s.handle("POST /containers/{id}/pause", func(w http.ResponseWriter, r *http.Request) error {
		if err := b.Pause(r.Context(), r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.handle("POST /containers/{id}/unpause", func(w http.ResponseWriter, r *http.Request) error {
		if err := b.Unpause(r.Context(), r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.handle("POST /containers/{id}/update", func(w http.ResponseWriter, r *http.Request) error {
		var u container.UpdateConfig
		if err := decodeJSON(w, r, &u); err != nil {
			return err
		}
		resp, err := b.Update(r.Context(), r.PathValue("id"), u)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, resp)
		return nil
	})
	s.handle("GET /containers/{id}/stats", func(w http.ResponseWriter, r *http.Request) error {
		// Docker streams unless told not to.
		opts := daemon.StatsOptions{Stream: true, OneShot: boolValue(r, "one-shot")}
		if v := r.URL.Query().Get("stream"); v != "" {
			opts.Stream = boolValue(r, "stream")
		}
		if opts.OneShot && opts.Stream {
			opts.OneShot = false // Docker ignores one-shot for a stream
		}
		started := false
		var enc *json.Encoder
		err := b.Stats(r.Context(), r.PathValue("id"), opts, func(st container.StatsResponse) error {
			if !started {
				started = true
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
				enc = json.NewEncoder(newFlushWriter(w))
			}
			return enc.Encode(st)
		})
		if started {
			return nil // the status went out: a broken stream just ends
		}
		return err
	})
}

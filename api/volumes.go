package api

import (
	"context"
	"net/http"

	"github.com/moby/moby/api/types/volume"

	dvolume "github.com/lodge-containers/lodge/daemon/volume"
)

// VolumeBackend keeps volumes. (*dvolume.Store fits.)
type VolumeBackend interface {
	Create(ctx context.Context, req dvolume.Options) (volume.Volume, error)
	Inspect(ctx context.Context, name string) (volume.Volume, error)
	List(ctx context.Context, filters map[string][]string) ([]volume.Volume, error)
	Remove(ctx context.Context, name string, force bool) error
	Prune(ctx context.Context, filters map[string][]string) (volume.PruneReport, error)
}

var _ VolumeBackend = (*dvolume.Store)(nil)

func (s *Server) addVolumeRoutes(b VolumeBackend) {
	s.handle("GET /volumes", func(w http.ResponseWriter, r *http.Request) error {
		f, err := filters(r)
		if err != nil {
			return err
		}
		list, err := b.List(r.Context(), f)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, volume.ListResponse{Volumes: list, Warnings: []string{}})
		return nil
	})
	s.handle("POST /volumes/create", func(w http.ResponseWriter, r *http.Request) error {
		var req volume.CreateRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		v, err := b.Create(r.Context(), dvolume.Options{Name: req.Name, Driver: req.Driver, DriverOpts: req.DriverOpts, Labels: req.Labels})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, v)
		return nil
	})
	s.handle("POST /volumes/prune", func(w http.ResponseWriter, r *http.Request) error {
		f, err := filters(r)
		if err != nil {
			return err
		}
		if cmpVersion(APIVersion(r.Context()), "1.42") < 0 {
			// Before API 1.42, prune removed named volumes too; Docker
			// keeps that for older clients.
			f["all"] = []string{"true"}
		}
		rep, err := b.Prune(r.Context(), f)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, rep)
		return nil
	})
	s.handle("GET /volumes/{name}", func(w http.ResponseWriter, r *http.Request) error {
		v, err := b.Inspect(r.Context(), r.PathValue("name"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	})
	s.handle("DELETE /volumes/{name}", func(w http.ResponseWriter, r *http.Request) error {
		if err := b.Remove(r.Context(), r.PathValue("name"), boolValue(r, "force")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

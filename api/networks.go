package api

import (
	"context"
	"net/http"

	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/daemon"
)

// NetworkBackend keeps networks. (daemon.NetworkAPI fits.)
type NetworkBackend interface {
	List(ctx context.Context, filters map[string][]string) ([]network.Inspect, error)
	Inspect(ctx context.Context, ref string) (network.Inspect, error)
	Create(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error)
	Remove(ctx context.Context, ref string) error
	// Prune removes the unused networks the filters (until, label,
	// label!) select.
	Prune(ctx context.Context, filters map[string][]string) (network.PruneReport, error)
	Connect(ctx context.Context, netRef, ctrRef string, es *network.EndpointSettings) error
	Disconnect(ctx context.Context, netRef, ctrRef string, force bool) error
}

var _ NetworkBackend = daemon.NetworkAPI{}

func (s *Server) addNetworkRoutes(b NetworkBackend) {
	list := func(w http.ResponseWriter, r *http.Request) error {
		f, err := filters(r)
		if err != nil {
			return err
		}
		list, err := b.List(r.Context(), f)
		if err != nil {
			return err
		}
		if list == nil {
			list = []network.Inspect{}
		}
		writeJSON(w, http.StatusOK, list)
		return nil
	}
	// Docker routes "/networks/" (a trailing slash) to the list too.
	s.handle("GET /networks", list)
	s.handle("GET /networks/{$}", list)
	s.handle("GET /networks/{id}", func(w http.ResponseWriter, r *http.Request) error {
		in, err := b.Inspect(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, in)
		return nil
	})
	s.handle("POST /networks/create", func(w http.ResponseWriter, r *http.Request) error {
		var req network.CreateRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		if cmpVersion(APIVersion(r.Context()), "1.48") < 0 {
			req.EnableIPv4 = nil // came with 1.48: Docker ignores an older client's
		}
		resp, err := b.Create(r.Context(), req)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, resp)
		return nil
	})
	s.handle("DELETE /networks/{id}", func(w http.ResponseWriter, r *http.Request) error {
		if err := b.Remove(r.Context(), r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.handle("POST /networks/prune", func(w http.ResponseWriter, r *http.Request) error {
		f, err := filters(r)
		if err != nil {
			return err
		}
		rep, err := b.Prune(r.Context(), f)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, rep)
		return nil
	})
	s.handle("POST /networks/{id}/connect", func(w http.ResponseWriter, r *http.Request) error {
		var req network.ConnectRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		if err := b.Connect(r.Context(), r.PathValue("id"), req.Container, req.EndpointConfig); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	s.handle("POST /networks/{id}/disconnect", func(w http.ResponseWriter, r *http.Request) error {
		var req network.DisconnectRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		if err := b.Disconnect(r.Context(), r.PathValue("id"), req.Container, req.Force); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
}

package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/moby/moby/api/types/events"

	"github.com/lodge-containers/lodge/daemon"
	"github.com/lodge-containers/lodge/errdefs"
)

// EventsBackend streams the daemon's events. (*daemon.Events fits.)
type EventsBackend interface {
	Watch(ctx context.Context, f daemon.EventFilter, send func(events.Message) error) error
}

var _ EventsBackend = (*daemon.Events)(nil)

func (s *Server) addEventRoutes(b EventsBackend) {
	s.handle("GET /events", func(w http.ResponseWriter, r *http.Request) error {
		fs, err := filters(r)
		if err != nil {
			return err
		}
		f, err := eventFilter(fs)
		if err != nil {
			return err
		}
		if f.Since, err = unixTime(r.URL.Query().Get("since")); err != nil {
			return err
		}
		if f.Until, err = unixTime(r.URL.Query().Get("until")); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		fw := newFlushWriter(w)
		fw.f.Flush()
		enc := json.NewEncoder(fw)
		return b.Watch(r.Context(), f, func(m events.Message) error { return enc.Encode(wireEvent(m)) })
	})
}

// eventFilter turns GET /events' filters into the daemon's, refusing a key
// Docker does not know with its words. The swarm keys are accepted and,
// as on a Docker outside a swarm, match nothing of what lodge reports.
func eventFilter(fs map[string][]string) (daemon.EventFilter, error) {
	f := daemon.EventFilter{Objects: map[string][]string{}}
	for k, vs := range fs {
		switch k {
		case "type":
			f.Types = vs
		case "event":
			f.Actions = vs
		case "image":
			f.Images = vs
		case "label":
			f.Labels = vs
		case "scope":
			f.Scopes = vs
		case "container", "volume", "network", "daemon", "plugin", "node", "service", "secret", "config":
			f.Objects[k] = vs
		default:
			return f, errdefs.InvalidArgumentf("invalid filter '%s'", k)
		}
	}
	return f, nil
}

// eventJSON is an event as Docker 28 sends it: beside Type, Action and
// Actor, the top-level status, id and from of API 1.21, which clients
// (docker-py, older compose and testcontainers' wait strategies) still
// read. The moby types have dropped them, so they are added here.
type eventJSON struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
	events.Message
}

// wireEvent fills the old fields for the types Docker fills them for:
// containers and images.
func wireEvent(m events.Message) eventJSON {
	e := eventJSON{Message: m}
	switch m.Type {
	case events.ContainerEventType:
		e.Status, e.ID, e.From = string(m.Action), m.Actor.ID, m.Actor.Attributes["image"]
	case events.ImageEventType:
		e.Status, e.ID = string(m.Action), m.Actor.ID
	}
	return e
}

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
		f := daemon.EventFilter{Types: fs["type"], Actions: fs["event"], Objects: fs["container"]}
		for k := range fs {
			switch k {
			case "type", "event", "container":
			default:
				return errdefs.NotImplementedf("events filter %q is not implemented (type, event and container are)", k)
			}
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
		return b.Watch(r.Context(), f, func(m events.Message) error { return enc.Encode(m) })
	})
}

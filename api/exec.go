package api

import (
	"context"
	"net/http"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/daemon"
	"github.com/lodge-containers/lodge/errdefs"
)

// ExecBackend runs processes in running containers.
type ExecBackend interface {
	ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error)
	ExecStart(ctx context.Context, id string, consoleSize *[2]uint, client daemon.AttachStream) error
	ExecResize(id string, height, width uint) error
	ExecInspect(id string) (container.ExecInspectResponse, error)
	ExecTTY(id string) (bool, error)
}

var _ ExecBackend = (*daemon.Containers)(nil)

func (s *Server) addExecRoutes(b ExecBackend) {
	s.handle("POST /containers/{id}/exec", func(w http.ResponseWriter, r *http.Request) error {
		var req container.ExecCreateRequest
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
		id, err := b.ExecCreate(r.Context(), r.PathValue("id"), req)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: id})
		return nil
	})
	s.handle("POST /exec/{id}/start", func(w http.ResponseWriter, r *http.Request) error {
		var req container.ExecStartRequest
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
		id := r.PathValue("id")
		tty, err := b.ExecTTY(id)
		if err != nil {
			return err
		}
		if req.Detach {
			if err := b.ExecStart(r.Context(), id, req.ConsoleSize, nil); err != nil {
				return err
			}
			w.WriteHeader(http.StatusOK)
			return nil
		}
		ct := "application/vnd.docker.multiplexed-stream"
		if tty {
			ct = "application/vnd.docker.raw-stream"
		}
		hj, err := hijack(w, r, ct)
		if err != nil {
			return err
		}
		defer hj.Close()
		if err := b.ExecStart(context.WithoutCancel(r.Context()), id, req.ConsoleSize, hj); err != nil {
			(&errStream{hj, tty}).write(err)
		}
		hj.CloseWrite()
		return nil
	})
	s.handle("POST /exec/{id}/resize", func(w http.ResponseWriter, r *http.Request) error {
		h, err := intValue(r, "h")
		if err != nil {
			return err
		}
		wd, err := intValue(r, "w")
		if err != nil {
			return err
		}
		if h == nil || wd == nil {
			return errdefs.InvalidArgumentf("resize needs h and w")
		}
		if err := b.ExecResize(r.PathValue("id"), uint(*h), uint(*wd)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	s.handle("GET /exec/{id}/json", func(w http.ResponseWriter, r *http.Request) error {
		resp, err := b.ExecInspect(r.PathValue("id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, resp)
		return nil
	})
}

// errStream reports an error on a stream whose headers are already sent.
type errStream struct {
	hj  *hijacked
	tty bool
}

func (e *errStream) write(err error) {
	msg := []byte(err.Error() + "\n")
	if e.tty {
		e.hj.Write(msg)
		return
	}
	hdr := [8]byte{2, 0, 0, 0, byte(len(msg) >> 24), byte(len(msg) >> 16), byte(len(msg) >> 8), byte(len(msg))}
	e.hj.Write(hdr[:])
	e.hj.Write(msg)
}

package api

import (
	"context"
	"encoding/binary"
	"io"
	"net/http"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/daemon"
	"github.com/lodge-containers/lodge/daemon/exec"
)

// ExecBackend runs processes in running containers.
type ExecBackend interface {
	ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error)
	ExecStartWith(ctx context.Context, id string, opts exec.StartOptions, client daemon.AttachStream) error
	ExecResize(id string, height, width uint) error
	ExecInspect(id string) (container.ExecInspectResponse, error)
	ExecTTY(id string) (bool, error)
}

var _ ExecBackend = (*exec.Service)(nil)

func (s *Server) addExecRoutes(b ExecBackend) {
	s.handle("POST /containers/{id}/exec", func(w http.ResponseWriter, r *http.Request) error {
		var req container.ExecCreateRequest
		if err := decodeJSON(w, r, &req); err != nil {
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
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		id := r.PathValue("id")
		if _, err := b.ExecTTY(id); err != nil { // 404 before the hijack
			return err
		}
		// The stream is framed by this request's Tty, not the exec's, as
		// Docker does; a console size comes only with a tty.
		opts := exec.StartOptions{ConsoleSize: req.ConsoleSize, Tty: req.Tty}
		if !req.Tty {
			opts.ConsoleSize = nil
		}
		if req.Detach {
			if err := b.ExecStartWith(r.Context(), id, opts, nil); err != nil {
				return err
			}
			w.WriteHeader(http.StatusOK)
			return nil
		}
		hj, err := hijack(w, r, streamType(req.Tty))
		if err != nil {
			return err
		}
		defer hj.Close()
		if err := b.ExecStartWith(context.WithoutCancel(r.Context()), id, opts, hj); err != nil {
			writeStreamError(hj, req.Tty, err)
		}
		_ = hj.CloseWrite() // the client may be gone: the stream is over either way
		return nil
	})
	s.handle("POST /exec/{id}/resize", func(w http.ResponseWriter, r *http.Request) error {
		h, wd, err := resizeParams(r)
		if err != nil {
			return err
		}
		if err := b.ExecResize(r.PathValue("id"), h, wd); err != nil {
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

// writeStreamError reports an error on a stream whose headers are already
// sent: raw with a TTY, else as a stderr frame.
func writeStreamError(w io.Writer, tty bool, err error) {
	msg := []byte(err.Error() + "\n")
	if tty {
		_, _ = w.Write(msg) // the stream's last words: a client gone reads none
		return
	}
	// stdcopy's frame: stream, three zero bytes, big-endian length.
	hdr := [8]byte{byte(stdcopy.Stderr)}
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(msg)))
	_, _ = w.Write(append(hdr[:], msg...)) // as above
}

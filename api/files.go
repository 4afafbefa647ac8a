package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/daemon"
	"github.com/lodge-containers/lodge/errdefs"
)

// FilesBackend moves files in and out of containers. (daemon.ContainerAPI
// fits.)
type FilesBackend interface {
	StatPath(ctx context.Context, ref, path string) (container.PathStat, error)
	ArchivePath(ctx context.Context, ref, path string, head func(container.PathStat) (io.Writer, error)) error
	ExtractToPath(ctx context.Context, ref, path string, r io.Reader, opts daemon.ExtractOptions) error
	Export(ctx context.Context, ref string, w io.Writer) error
	Changes(ctx context.Context, ref string) ([]container.FilesystemChange, error)
}

// CommitBackend makes images of containers. (*daemon.Images fits.)
type CommitBackend interface {
	Commit(ctx context.Context, req daemon.CommitRequest) (string, error)
}

var (
	_ FilesBackend  = daemon.ContainerAPI{}
	_ CommitBackend = (*daemon.Images)(nil)
)

const pathStatHeader = "X-Docker-Container-Path-Stat"

func setPathStat(w http.ResponseWriter, st container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	w.Header().Set(pathStatHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}

func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", errdefs.InvalidArgumentf("path is required")
	}
	return p, nil
}

func (s *Server) addFileRoutes(b FilesBackend) {
	s.handle("HEAD /containers/{id}/archive", func(w http.ResponseWriter, r *http.Request) error {
		p, err := archivePath(r)
		if err != nil {
			return err
		}
		st, err := b.StatPath(r.Context(), r.PathValue("id"), p)
		if err != nil {
			return err
		}
		return setPathStat(w, st)
	})
	s.handle("GET /containers/{id}/archive", func(w http.ResponseWriter, r *http.Request) error {
		p, err := archivePath(r)
		if err != nil {
			return err
		}
		started := false
		err = b.ArchivePath(r.Context(), r.PathValue("id"), p, func(st container.PathStat) (io.Writer, error) {
			if err := setPathStat(w, st); err != nil {
				return nil, err
			}
			w.Header().Set("Content-Type", "application/x-tar")
			w.WriteHeader(http.StatusOK)
			started = true
			return s.stallWrites(w, w), nil
		})
		if err != nil && started {
			// The status is gone: a cut tar stream is the client's sign.
			s.log.Warn("archive ended early", "path", p, "err", err)
			return nil
		}
		return err
	})
	s.handle("PUT /containers/{id}/archive", func(w http.ResponseWriter, r *http.Request) error {
		p, err := archivePath(r)
		if err != nil {
			return err
		}
		opts := daemon.ExtractOptions{NoOverwriteDirNonDir: boolValue(r, "noOverwriteDirNonDir"), CopyUIDGID: boolValue(r, "copyUIDGID")}
		if err := b.ExtractToPath(r.Context(), r.PathValue("id"), p, r.Body, opts); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	s.handle("GET /containers/{id}/export", func(w http.ResponseWriter, r *http.Request) error {
		lw := &lazyWriter{w: w, contentType: "application/x-tar"}
		err := b.Export(r.Context(), r.PathValue("id"), s.stallWrites(w, lw))
		if err != nil && lw.started {
			s.log.Warn("export ended early", "err", err)
			return nil
		}
		if err == nil && !lw.started {
			lw.start()
		}
		return err
	})
	s.handle("GET /containers/{id}/changes", func(w http.ResponseWriter, r *http.Request) error {
		chs, err := b.Changes(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, chs)
		return nil
	})
}

func (s *Server) addCommitRoutes(b CommitBackend) {
	s.handle("POST /commit", func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		req := daemon.CommitRequest{Container: q.Get("container"), Author: q.Get("author"), Comment: q.Get("comment"), Changes: q["changes"],
			// Docker pauses unless told pause=0; the CLI sends it either way.
			Pause: q.Get("pause") == "" || boolValue(r, "pause")}
		if req.Container == "" {
			return errdefs.InvalidArgumentf("container is required")
		}
		if repo := q.Get("repo"); repo != "" {
			req.Ref = repo
			if t := q.Get("tag"); t != "" {
				req.Ref += ":" + t
			}
		}
		var cfg container.Config
		if r.ContentLength != 0 {
			if err := decodeJSON(w, r, &cfg); err != nil {
				return err
			}
			req.Config = &cfg
		}
		id, err := b.Commit(r.Context(), req)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, container.CommitResponse{ID: id})
		return nil
	})
}

// DiskUsageBackend answers `docker system df`. (*daemon.Images fits.)
type DiskUsageBackend interface {
	DiskUsage(ctx context.Context) (daemon.DiskUsage, error)
}

var _ DiskUsageBackend = (*daemon.Images)(nil)

func (s *Server) addDiskUsageRoutes(b DiskUsageBackend) {
	s.handle("GET /system/df", func(w http.ResponseWriter, r *http.Request) error {
		du, err := b.DiskUsage(r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, du)
		return nil
	})
}

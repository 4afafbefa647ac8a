package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lodge-containers/lodge/daemon"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/internal/platform"
)

// ImageBackend keeps images. (*daemon.Images fits.)
type ImageBackend interface {
	List(all bool, filters map[string][]string) ([]imagetypes.Summary, error)
	Inspect(ref string) (imagetypes.InspectResponse, error)
	History(ref string) ([]imagetypes.HistoryResponseItem, error)
	Tag(src, dst string) error
	// Remove is docker rmi; noPrune keeps the untagged parents.
	Remove(ref string, force, noPrune bool) ([]imagetypes.DeleteResponse, error)
	// Prune takes Docker's image prune filters, refusing unknown ones.
	Prune(filters map[string][]string) ([]imagetypes.DeleteResponse, uint64, error)
	// Pull, Push, Load and Import report on p as they go; a nil auth
	// means the user's own credentials.
	Pull(ctx context.Context, ref, platform string, auth *registry.AuthConfig, p ProgressSink) (string, error)
	// PullAllTags pulls every tag of the repository ref names.
	PullAllTags(ctx context.Context, ref, platform string, auth *registry.AuthConfig, p ProgressSink) error
	Push(ctx context.Context, ref string, auth *registry.AuthConfig, p ProgressSink) error
	Load(ctx context.Context, r io.Reader, p ProgressSink) error
	Save(ctx context.Context, refs []string, platform string, w io.Writer) error
	// Import names the image ref ("" for none), applies changes
	// (Dockerfile instructions) and records message; platform "" is this
	// machine's.
	Import(ctx context.Context, r io.Reader, ref string, changes []string, message, platform string, p ProgressSink) (string, error)
	// OpenImportURL downloads what docker import URL names, for Import.
	OpenImportURL(ctx context.Context, src string, p ProgressSink) (io.ReadCloser, error)
	Login(ctx context.Context, a registry.AuthConfig) (string, error)
	// DistributionInspect asks the registry for ref's manifest
	// descriptor and platforms, pulling nothing.
	DistributionInspect(ctx context.Context, ref string, auth *registry.AuthConfig) (registry.DistributionInspect, error)
	// Search is `docker search`: a registry's v1 search, filtered.
	Search(ctx context.Context, term string, limit int, filters map[string][]string, auth *registry.AuthConfig) ([]registry.SearchResult, error)
}

var (
	_ ImageBackend          = (*daemon.Images)(nil)
	_ buildContainerBackend = (*daemon.Images)(nil)
)

// parentBackend is an ImageBackend that knows the image each image was
// made on locally (Docker's Parent in inspect).
type parentBackend interface {
	ParentOf(ref string) string
}

// sharedSizeLister is an ImageBackend that adds up each image's shared
// size (GET /images/json?shared-size=1).
type sharedSizeLister interface {
	ListSharedSize(all bool, filters map[string][]string) ([]imagetypes.Summary, error)
}

// buildContainerBackend is an ImageBackend that knows the container an
// image was committed from (Docker's Container and ContainerConfig).
type buildContainerBackend interface {
	BuildContainer(ref string) (string, json.RawMessage)
}

func (s *Server) addImageRoutes(b ImageBackend) {
	s.handle("GET /images/json", func(w http.ResponseWriter, r *http.Request) error {
		f, err := filters(r)
		if err != nil {
			return err
		}
		list := b.List
		if sl, ok := b.(sharedSizeLister); ok && boolValue(r, "shared-size") {
			list = sl.ListSharedSize
		}
		images, err := list(boolValue(r, "all"), f)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, images)
		return nil
	})
	s.handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		if src := q.Get("fromSrc"); src != "" {
			ref := q.Get("repo")
			if t := q.Get("tag"); ref != "" && t != "" {
				ref += ":" + t
			}
			// Refused before the stream starts, as Docker does.
			if p, err := platform.Parse(q.Get("platform")); err != nil {
				return err
			} else if p != nil && !strings.EqualFold(p.OS, "linux") {
				return errdefs.InvalidArgumentf("operating system is not supported")
			}
			return streamJSON(w, func(p ProgressSink) error {
				body := io.Reader(r.Body)
				if src != "-" {
					// docker import URL: lodged downloads it, as Docker does.
					rc, err := b.OpenImportURL(r.Context(), src, p)
					if err != nil {
						return err
					}
					defer rc.Close()
					body = rc
				}
				_, err := b.Import(r.Context(), body, ref, q["changes"], q.Get("message"), q.Get("platform"), p)
				return err
			})
		}
		ref := q.Get("fromImage")
		if ref == "" {
			return errdefs.InvalidArgumentf("fromImage or fromSrc is required")
		}
		// A repository with neither a tag in the query nor one in its
		// name is every tag of it (docker pull --all-tags), as in Docker;
		// the clients send latest for a plain pull.
		allTags := false
		if n, err := reference.ParseNormalizedNamed(ref); err == nil && q.Get("tag") == "" && reference.IsNameOnly(n) {
			allTags = true
		}
		if t := q.Get("tag"); t != "" {
			if strings.HasPrefix(t, "sha256:") {
				ref += "@" + t
			} else {
				ref += ":" + t
			}
		}
		auth, err := decodeAuth(r.Header.Get("X-Registry-Auth"))
		if err != nil {
			return err
		}
		return streamJSON(w, func(p ProgressSink) error {
			if allTags {
				return b.PullAllTags(r.Context(), ref, q.Get("platform"), auth, p)
			}
			_, err := b.Pull(r.Context(), ref, q.Get("platform"), auth, p)
			return err
		})
	})
	s.handle("POST /images/load", func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		p := newJSONProgress(newFlushWriter(w))
		if err := b.Load(r.Context(), r.Body, p); err != nil {
			p.Error(err)
		}
		return nil
	})
	save := func(w http.ResponseWriter, r *http.Request, refs []string) error {
		if len(refs) == 0 {
			return errdefs.InvalidArgumentf("no image names given")
		}
		platform, err := platformParam(r, "1.48")
		if err != nil {
			return err
		}
		// Save checks every name before it writes a byte: an unknown
		// one is a 404, not a broken archive.
		w.Header().Set("Content-Type", "application/x-tar")
		return b.Save(r.Context(), refs, platform, s.stallWrites(w, w))
	}
	s.handle("GET /images/get", func(w http.ResponseWriter, r *http.Request) error {
		return save(w, r, r.URL.Query()["names"])
	})
	s.handle("POST /images/prune", func(w http.ResponseWriter, r *http.Request) error {
		f, err := filters(r)
		if err != nil {
			return err
		}
		deleted, freed, err := b.Prune(f)
		if err != nil {
			return err
		}
		if deleted == nil {
			deleted = []imagetypes.DeleteResponse{}
		}
		writeJSON(w, http.StatusOK, imagetypes.PruneReport{ImagesDeleted: deleted, SpaceReclaimed: freed})
		return nil
	})
	// Image names hold slashes, so the action is the path's last element.
	s.handle("GET /images/{rest...}", func(w http.ResponseWriter, r *http.Request) error {
		name, action := splitAction(r.PathValue("rest"))
		switch action {
		case "json":
			v, err := b.Inspect(name)
			if err != nil {
				return err
			}
			if err := checkInspectPlatform(r, name, v); err != nil {
				return err
			}
			out := withLegacyImageFields(r.Context(), v)
			if m, ok := out.(map[string]any); ok {
				m["Parent"] = ""
				if pb, ok := b.(parentBackend); ok {
					m["Parent"] = pb.ParentOf(v.ID)
				}
				if cb, ok := b.(buildContainerBackend); ok {
					if id, cfg := cb.BuildContainer(v.ID); id != "" {
						m["Container"], m["ContainerConfig"] = id, cfg
					}
				}
			}
			writeJSON(w, http.StatusOK, out)
			return nil
		case "history":
			v, err := b.History(name)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, v)
			return nil
		case "get":
			return save(w, r, []string{name})
		}
		return errdefs.NotImplementedf("lodge does not implement GET %s yet", r.URL.Path)
	})
	s.handle("POST /images/{rest...}", func(w http.ResponseWriter, r *http.Request) error {
		name, action := splitAction(r.PathValue("rest"))
		q := r.URL.Query()
		switch action {
		case "tag":
			dst := q.Get("repo")
			if t := q.Get("tag"); t != "" {
				dst += ":" + t
			}
			if err := b.Tag(name, dst); err != nil {
				return err
			}
			w.WriteHeader(http.StatusCreated)
			return nil
		case "push":
			ref := name
			if t := q.Get("tag"); t != "" {
				ref += ":" + t
			}
			auth, err := decodeAuth(r.Header.Get("X-Registry-Auth"))
			if err != nil {
				return err
			}
			return streamJSON(w, func(p ProgressSink) error { return b.Push(r.Context(), ref, auth, p) })
		}
		return errdefs.NotImplementedf("lodge does not implement POST %s yet", r.URL.Path)
	})
	s.handle("DELETE /images/{name...}", func(w http.ResponseWriter, r *http.Request) error {
		v, err := b.Remove(r.PathValue("name"), boolValue(r, "force"), boolValue(r, "noprune"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	})
	s.handle("GET /images/search", func(w http.ResponseWriter, r *http.Request) error {
		limit := 0
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return errdefs.InvalidArgumentf("invalid limit specified: %q", v)
			}
			limit = n
		}
		f, err := filters(r)
		if err != nil {
			return err
		}
		// As for a distribution inspect: a header that cannot be read
		// is no credentials.
		auth, err := decodeAuth(r.Header.Get("X-Registry-Auth"))
		if err != nil {
			auth = nil
		}
		v, err := b.Search(r.Context(), r.URL.Query().Get("term"), limit, f, auth)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	})
	s.handle("GET /distribution/{rest...}", func(w http.ResponseWriter, r *http.Request) error {
		name, action := splitAction(r.PathValue("rest"))
		if action != "json" || name == "" {
			return errdefs.NotFoundf("page not found")
		}
		// Docker reads a header it cannot decode as no credentials.
		auth, err := decodeAuth(r.Header.Get("X-Registry-Auth"))
		if err != nil {
			auth = nil
		}
		v, err := b.DistributionInspect(r.Context(), name, auth)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	})
	s.handle("POST /auth", func(w http.ResponseWriter, r *http.Request) error {
		var a registry.AuthConfig
		if err := decodeJSON(w, r, &a); err != nil {
			return err
		}
		status, err := b.Login(r.Context(), a)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, registry.AuthResponse{Status: status})
		return nil
	})
}

// splitAction splits "team/app:1/json" into the name and "json".
func splitAction(rest string) (name, action string) {
	i := strings.LastIndex(rest, "/")
	if i < 0 {
		return rest, ""
	}
	return rest[:i], rest[i+1:]
}

// streamJSON runs f with a progress stream. An error before anything was
// written is the response's status; after, it ends the stream, where the
// docker CLI prints it.
func streamJSON(w http.ResponseWriter, f func(p ProgressSink) error) error {
	lw := &lazyWriter{w: w}
	p := newJSONProgress(lw)
	err := f(p)
	if err != nil && !lw.started {
		return err
	}
	if err != nil {
		p.Error(err)
	}
	if !lw.started {
		lw.start()
	}
	return nil
}

// lazyWriter sends the 200 and headers on the first write.
type lazyWriter struct {
	w           http.ResponseWriter
	started     bool
	contentType string // "" is JSON
}

func (l *lazyWriter) start() {
	l.started = true
	ct := l.contentType
	if ct == "" {
		ct = "application/json"
	}
	l.w.Header().Set("Content-Type", ct)
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.start()
	}
	n, err := l.w.Write(p)
	if f, ok := l.w.(http.Flusher); ok {
		f.Flush()
	}
	return n, err
}

// platformParam is the request's platform parameter from API version
// since on (older clients' is ignored, as Docker ignores it); one at most.
func platformParam(r *http.Request, since string) (string, error) {
	if cmpVersion(APIVersion(r.Context()), since) < 0 {
		return "", nil
	}
	ps := r.URL.Query()["platform"]
	if len(ps) > 1 {
		return "", errdefs.InvalidArgumentf("multiple platform parameters not supported")
	}
	if len(ps) == 0 {
		return "", nil
	}
	if _, err := platform.Parse(ps[0]); err != nil {
		return "", err
	}
	return ps[0], nil
}

// checkInspectPlatform refuses, as Docker does from API 1.49, an inspect
// that asks for a platform the image is not of.
func checkInspectPlatform(r *http.Request, name string, v imagetypes.InspectResponse) error {
	spec, err := platformParam(r, "1.49")
	if err != nil || spec == "" {
		return err
	}
	want, _ := platform.Parse(spec)
	have := ocispec.Platform{OS: v.Os, Architecture: v.Architecture, Variant: v.Variant}
	if !platform.Matches(*want, have) {
		return errdefs.NotFoundf("image with reference %s was found but its platform (%s) does not match the specified platform (%s)",
			name, platform.Format(have), platform.Format(*want))
	}
	return nil
}

package api

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/version"
)

// handlerFunc is a route's handler. It returns an error instead of writing
// one, so that the status is chosen once, in serve.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// Server routes the Docker Engine API to its backends. It is safe for
// concurrent use once built.
type Server struct {
	mux *http.ServeMux
	log *slog.Logger
	// stall is how long a request body may send nothing.
	stall time.Duration
}

// Backends are the services the routes call. A nil backend leaves its
// routes answering 501.
type Backends struct {
	System     SystemBackend
	Containers ContainerBackend
	Exec       ExecBackend
	Images     ImageBackend
	Networks   NetworkBackend
	Volumes    VolumeBackend
	Files      FilesBackend
	Commit     CommitBackend
	DiskUsage  DiskUsageBackend
	Events     EventsBackend
	Build      BuildBackend
	// BuildKit serves /grpc and /session; without it they answer 501.
	BuildKit BuildKitBackend
}

// NewServer builds the router.
func NewServer(b Backends, log *slog.Logger) *Server {
	s := &Server{mux: http.NewServeMux(), log: log, stall: bodyStallTimeout}
	s.addDebugRoutes()
	if b.System != nil {
		s.addSystemRoutes(b.System, b.Build != nil && b.BuildKit != nil)
	}
	if b.Containers != nil {
		s.addContainerRoutes(b.Containers)
		if cb, ok := b.Containers.(CgroupBackend); ok {
			s.addCgroupRoutes(cb)
		}
	}
	if b.Exec != nil {
		s.addExecRoutes(b.Exec)
	}
	if b.Images != nil {
		s.addImageRoutes(b.Images)
		if lr, ok := b.Images.(LocalRegistryBackend); ok && b.BuildKit != nil {
			s.addLocalRegistryRoutes(lr)
		}
	}
	if b.Networks != nil {
		s.addNetworkRoutes(b.Networks)
	}
	if b.Volumes != nil {
		s.addVolumeRoutes(b.Volumes)
	}
	if b.Files != nil {
		s.addFileRoutes(b.Files)
	}
	if b.Commit != nil {
		s.addCommitRoutes(b.Commit)
	}
	if b.DiskUsage != nil {
		s.addDiskUsageRoutes(b.DiskUsage)
	}
	if b.Events != nil {
		s.addEventRoutes(b.Events)
	}
	if b.Build != nil {
		s.addBuildRoutes(b.Build, b.BuildKit)
	}
	s.addAbsentRoutes(b.Networks == nil)
	s.mux.HandleFunc("/", s.serve(func(w http.ResponseWriter, r *http.Request) error {
		return errdefs.NotImplementedf("lodge does not implement %s %s yet", r.Method, r.URL.Path)
	}))
	return s
}

func (s *Server) handle(pattern string, h handlerFunc) { s.mux.HandleFunc(pattern, s.serve(h)) }

// serve turns a handlerFunc into an http.HandlerFunc, writing its error.
func (s *Server) serve(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			status := statusOf(err)
			if status >= 500 && status != http.StatusNotImplemented {
				s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeError(w, err)
		}
	}
}

var versionPrefix = regexp.MustCompile(`^/v(\d+)\.(\d+)(/.*)$`)

var repeatedSlashes = regexp.MustCompile(`/{2,}`)

type ctxKey struct{}

// APIVersion is the version the client asked for in its path prefix, or the
// newest lodge speaks when it gave none.
func APIVersion(ctx context.Context) string {
	if v, ok := ctx.Value(ctxKey{}).(string); ok {
		return v
	}
	return version.APIVersion
}

// ServeHTTP strips a /v1.NN prefix (refusing versions lodge does not speak,
// with Docker's wording) and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	guardBody(w, r, s.stall)
	w.Header().Set("Api-Version", version.APIVersion)
	w.Header().Set("Server", "lodge/"+version.Version+" (linux)")
	v := version.APIVersion
	if m := versionPrefix.FindStringSubmatch(r.URL.Path); m != nil {
		v = m[1] + "." + m[2]
		if cmpVersion(v, version.MinAPIVersion) < 0 {
			writeError(w, errdefs.InvalidArgumentf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", v, version.MinAPIVersion))
			return
		}
		if cmpVersion(v, version.APIVersion) > 0 {
			writeError(w, errdefs.InvalidArgumentf("client version %s is too new. Maximum supported API version is %s", v, version.APIVersion))
			return
		}
		r2 := r.Clone(context.WithValue(r.Context(), ctxKey{}, v))
		r2.URL.Path = m[3]
		r2.URL.RawPath = ""
		r = r2
	} else {
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, v))
	}
	if strings.Contains(r.URL.Path, "//") {
		// A container reference with its leading slash (/containers//app/db
		// for docker rm --link /app/db) is Docker's too: the mux would
		// answer with a redirect, which a DELETE must not follow.
		r.URL.Path = repeatedSlashes.ReplaceAllString(r.URL.Path, "/")
		r.URL.RawPath = ""
	}
	s.mux.ServeHTTP(w, r)
}

// cmpVersion compares "major.minor" strings numerically.
func cmpVersion(a, b string) int {
	pa, pb := strings.SplitN(a, ".", 2), strings.SplitN(b, ".", 2)
	for i := 0; i < 2; i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

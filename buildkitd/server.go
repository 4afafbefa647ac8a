package buildkitd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/defaults"
	"github.com/moby/buildkit/cache/remotecache"
	inlineremotecache "github.com/moby/buildkit/cache/remotecache/inline"
	localremotecache "github.com/moby/buildkit/cache/remotecache/local"
	registryremotecache "github.com/moby/buildkit/cache/remotecache/registry"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/control"
	"github.com/moby/buildkit/frontend"
	dockerfile "github.com/moby/buildkit/frontend/dockerfile/builder"
	"github.com/moby/buildkit/frontend/gateway"
	"github.com/moby/buildkit/frontend/gateway/forwarder"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/solver"
	"github.com/moby/buildkit/solver/bboltcachestorage"
	"github.com/moby/buildkit/util/db/boltutil"
	"github.com/moby/buildkit/util/grpcerrors"
	"github.com/moby/buildkit/util/resolver"
	"github.com/moby/buildkit/worker"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
)

// Config says where the helper keeps its state and how it reaches lodged.
type Config struct {
	// Root holds BuildKit's state: <data-root>/buildkit.
	Root string
	// Runc is the runc binary BuildKit's executor runs steps with.
	Runc string
	// LodgeSocket is lodged's API socket, whose read-only registry view
	// of lodge's images comes before every registry.
	LodgeSocket string
	// Loader receives the images the "moby" exporter makes.
	Loader Loader
	// Log gets the few things worth saying (snapshotter choice, errors).
	Log *slog.Logger
}

// Server is BuildKit's controller behind Docker's two hijacked endpoints.
// Close it to stop builds and release BuildKit's databases.
type Server struct {
	ctl     *control.Controller
	w       worker.Worker
	sm      *session.Manager
	grpc    *grpc.Server
	h2      *http2.Server
	log     *slog.Logger
	stopped chan struct{}
}

// New assembles the controller. It takes BuildKit's lock on its databases
// under cfg.Root, so only one helper per data root can run.
func New(ctx context.Context, cfg Config) (*Server, error) {
	sm, err := session.NewManager()
	if err != nil {
		return nil, err
	}
	w, err := newWorker(ctx, cfg.Root, cfg.Runc, cfg.LodgeSocket, cfg.Loader, cfg.Log)
	if err != nil {
		return nil, err
	}
	wc := &worker.Controller{}
	if err := wc.Add(w); err != nil {
		return nil, err
	}
	frontends := map[string]frontend.Frontend{
		"dockerfile.v0": forwarder.NewGatewayForwarder(wc.Infos(), dockerfile.Build),
	}
	// gateway.v0 runs frontends from images ("# syntax=..."): they need a
	// registry, but refusing them would fail Dockerfiles that only name
	// one out of habit with an unclear message.
	gw, err := gateway.NewGatewayFrontend(wc.Infos(), nil)
	if err != nil {
		return nil, err
	}
	frontends["gateway.v0"] = gw
	cacheStore, err := bboltcachestorage.NewStore(filepath.Join(cfg.Root, "cache.db"))
	if err != nil {
		return nil, err
	}
	history, err := boltutil.SafeOpen(filepath.Join(cfg.Root, "history.db"), 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, err
	}
	hosts := resolver.NewRegistryConfig(nil)
	stopped := make(chan struct{})
	ctl, err := control.NewController(control.Opt{
		SessionManager:   sm,
		WorkerController: wc,
		Frontends:        frontends,
		ResolveCacheExporterFuncs: map[string]remotecache.ResolveCacheExporterFunc{
			"registry": registryremotecache.ResolveCacheExporterFunc(sm, hosts),
			"local":    localremotecache.ResolveCacheExporterFunc(sm),
			"inline":   inlineremotecache.ResolveCacheExporterFunc(),
		},
		ResolveCacheImporterFuncs: map[string]remotecache.ResolveCacheImporterFunc{
			"registry": registryremotecache.ResolveCacheImporterFunc(sm, w.ContentStore(), hosts),
			"local":    localremotecache.ResolveCacheImporterFunc(sm),
		},
		CacheManager:   solver.NewCacheManager(ctx, "local", cacheStore, worker.NewCacheResultStorage(wc)),
		HistoryDB:      history,
		CacheStore:     cacheStore,
		LeaseManager:   w.LeaseManager(),
		ContentStore:   w.ContentStore(),
		GarbageCollect: w.GarbageCollect,
		GracefulStop:   stopped,
	})
	if err != nil {
		return nil, err
	}
	g := grpc.NewServer(
		grpc.UnaryInterceptor(grpcerrors.UnaryServerInterceptor),
		grpc.StreamInterceptor(grpcerrors.StreamServerInterceptor),
		grpc.MaxRecvMsgSize(defaults.DefaultMaxRecvMsgSize),
		grpc.MaxSendMsgSize(defaults.DefaultMaxSendMsgSize),
	)
	ctl.Register(g)
	return &Server{ctl: ctl, w: w, sm: sm, grpc: g, h2: &http2.Server{}, log: cfg.Log, stopped: stopped}, nil
}

// Serve answers on l until it is closed: POST .../grpc and POST
// .../session, with or without Docker's /v1.NN prefix, since lodged
// forwards the client's request head unchanged.
func (s *Server) Serve(l net.Listener) error {
	srv := &http.Server{Handler: http.HandlerFunc(s.route)}
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	var err error
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/grpc"):
		err = s.serveGRPC(w, r)
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/session"):
		err = s.sm.HandleHTTPRequest(r.Context(), w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/lodge/prune":
		s.servePrune(w, r)
		return
	default:
		http.Error(w, "lodge-buildkitd serves POST /grpc and POST /session only", http.StatusNotFound)
		return
	}
	if err != nil {
		// Both handlers hijack first when they can; an error before that
		// still has the response to write to.
		s.log.Warn("buildkit request", "path", r.URL.Path, "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

// serveGRPC switches the connection to h2c and runs gRPC on it, as Docker
// does: the client sent "Upgrade: h2c" and speaks HTTP/2 right after the
// 101 without waiting for a settings exchange over HTTP/1.
func (s *Server) serveGRPC(w http.ResponseWriter, r *http.Request) error {
	if p := r.Header.Get("Upgrade"); p != "h2c" {
		return fmt.Errorf("upgrade %q: only h2c is served", p)
	}
	h, ok := w.(http.Hijacker)
	if !ok {
		return errors.New("connection cannot be hijacked")
	}
	conn, rw, err := h.Hijack()
	if err != nil {
		return err
	}
	if rw.Reader.Buffered() > 0 {
		conn = &bufferedConn{Conn: conn, r: rw.Reader}
	}
	if _, err := conn.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")); err != nil {
		conn.Close()
		return nil
	}
	s.h2.ServeConn(conn, &http2.ServeConnOpts{Context: context.WithoutCancel(r.Context()), Handler: s.grpc})
	return nil
}

// servePrune is lodged's `docker builder prune`: everything BuildKit
// keeps that no build holds, as Docker's prune of BuildKit's cache with
// --all. JSON {"CachesDeleted": [...], "SpaceReclaimed": n}.
func (s *Server) servePrune(w http.ResponseWriter, r *http.Request) {
	ch := make(chan client.UsageInfo)
	got := make(chan struct{})
	deleted := []string{}
	var freed uint64
	go func() {
		for u := range ch {
			deleted = append(deleted, u.ID)
			freed += uint64(u.Size)
		}
		close(got)
	}()
	err := s.w.Prune(r.Context(), ch, client.PruneInfo{All: true})
	close(ch)
	<-got
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]string{"Message": err.Error()}) // the status is sent
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"CachesDeleted": deleted, "SpaceReclaimed": freed})
}

// bufferedConn keeps what net/http read past the request head: a client
// that does not wait for the 101 has already sent HTTP/2's preface.
type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Close stops running builds and the gRPC server and closes BuildKit's
// databases.
func (s *Server) Close() error {
	close(s.stopped)
	s.grpc.Stop()
	return s.ctl.Close()
}

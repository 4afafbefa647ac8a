package cri

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/paths"
)

// DefaultStreamAddress is where the streaming server listens unless lodged
// is told otherwise: loopback, on a port the kernel picks (containerd's
// stream_server_address and stream_server_port defaults).
const DefaultStreamAddress = "127.0.0.1:0"

// streamServer serves the URLs Exec, Attach and PortForward answer with:
// the kubelet's streaming library (k8s.io/cri-streaming) over lodge's
// exec table, attach and the pods' network namespaces.
//
// Security: the server speaks plain HTTP on a TCP port, which every user
// of the machine can reach, even on loopback. Like cri.sock, it answers
// lodged's owner alone: each connection whose client socket belongs to
// another user, or is not on this machine's network namespace, is closed
// unanswered (ownerOnly). Behind that, each URL carries a token: random
// (8 base64 characters, 48 bits from crypto/rand), good for one request
// and for one minute, at most 1000 waiting at once — the library's
// request cache, whose defaults lodge keeps, as containerd does. The
// token is handed out only on cri.sock. Nothing listens until the first streaming call, so a lodged
// whose pods never stream opens no port at all.
type streamServer struct {
	addr string // host:port to listen on
	rt   streaming.Runtime
	log  *slog.Logger

	mu     sync.Mutex
	lib    streaming.Server // nil until the first streaming call
	hs     *http.Server
	bound  string                // the address listened on
	conns  map[net.Conn]struct{} // open connections, hijacked ones too
	closed bool
}

func newStreamServer(addr string, rt streaming.Runtime, log *slog.Logger) *streamServer {
	if addr == "" {
		addr = DefaultStreamAddress
	}
	return &streamServer{addr: addr, rt: rt, log: log, conns: map[net.Conn]struct{}{}}
}

// server returns the library's server, listening from the first call on.
// A listen that fails is errdefs.ErrUnavailable and is tried again at
// the next call.
func (ss *streamServer) server() (streaming.Server, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return nil, errdefs.Unavailablef("the CRI streaming server has stopped")
	}
	if ss.lib != nil {
		return ss.lib, nil
	}
	l, err := net.Listen("tcp", ss.addr)
	if err != nil {
		return nil, fmt.Errorf("CRI streaming server on %s: %w: %w", ss.addr, err, errdefs.ErrUnavailable)
	}
	cfg := streaming.DefaultConfig
	// The URLs carry the address listened on, its port chosen by now:
	// the library would learn it only in its own Start, after a first
	// URL could have been handed out with port 0.
	cfg.Addr = l.Addr().String()
	lib, err := streaming.NewServer(cfg, ss.rt)
	if err != nil {
		_ = l.Close() // unused: the server's error is the one to report
		return nil, err
	}
	hs := &http.Server{Handler: lib, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		if err := hs.Serve(trackedListener{ss.ownerOnly(l), ss}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			ss.log.Error("CRI streaming server", "err", err)
		}
	}()
	ss.lib, ss.hs, ss.bound = lib, hs, cfg.Addr
	ss.log.Info("CRI streaming server listening", "address", cfg.Addr)
	return lib, nil
}

// ownerOnly hands out only the connections whose client socket belongs to
// lodged's own user (tcpPeerUID): on a shared machine every user reaches
// loopback. A refused client sees its connection closed with no answer;
// anyone can knock, so the refusal is logged at debug level only.
func (ss *streamServer) ownerOnly(l net.Listener) net.Listener {
	return &paths.OwnerListener{Listener: l, UID: os.Geteuid(), PeerUID: tcpPeerUID, Refuse: func(c net.Conn, uid int, err error) {
		ss.log.Debug("refused CRI streaming connection: not lodged's user", "remote", c.RemoteAddr().String(), "uid", uid, "err", err)
		_ = c.Close() // refused either way
	}}
}

// close stops the server and ends every stream it serves; later
// streaming calls are refused.
func (ss *streamServer) close() {
	ss.mu.Lock()
	ss.closed = true
	hs := ss.hs
	// http.Server forgets the connections it hands to a hijacker: the
	// streams in flight are closed here.
	conns := make([]net.Conn, 0, len(ss.conns))
	for c := range ss.conns {
		conns = append(conns, c)
	}
	ss.mu.Unlock()
	if hs != nil {
		_ = hs.Close() // its listener's error on the way out means nothing now
	}
	for _, c := range conns {
		_ = c.Close() // ending it is the point; an error is no news
	}
}

// listening is the address listened on, "" before the first streaming
// call.
func (ss *streamServer) listening() string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.bound
}

// trackedListener records each connection it accepts until it is closed,
// so that close can end the hijacked ones.
type trackedListener struct {
	net.Listener
	ss *streamServer
}

func (l trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, ss: l.ss}
	l.ss.mu.Lock()
	closed := l.ss.closed
	if !closed {
		l.ss.conns[tc] = struct{}{}
	}
	l.ss.mu.Unlock()
	if closed {
		_ = c.Close() // too late to serve
	}
	return tc, nil
}

type trackedConn struct {
	net.Conn
	ss   *streamServer
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.ss.mu.Lock()
		delete(c.ss.conns, c)
		c.ss.mu.Unlock()
	})
	return c.Conn.Close()
}

// Exec answers the URL of a one-time stream that runs a command in a
// running container, as the kubelet's kubectl exec does.
func (s *Server) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	c, err := s.runningCtr(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if len(req.GetCmd()) == 0 {
		return nil, errdefs.InvalidArgumentf("no command to run")
	}
	srv, err := s.stream.server()
	if err != nil {
		return nil, err
	}
	r := proto.Clone(req).(*runtimeapi.ExecRequest)
	r.ContainerId = c
	return srv.GetExec(r)
}

// Attach answers the URL of a one-time stream attached to a running
// container's stdio.
func (s *Server) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if s.b.Attach == nil {
		return nil, unimplemented("Attach")
	}
	c, err := s.runningCtr(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	srv, err := s.stream.server()
	if err != nil {
		return nil, err
	}
	r := proto.Clone(req).(*runtimeapi.AttachRequest)
	r.ContainerId = c
	return srv.GetAttach(r)
}

// PortForward answers the URL of a one-time stream whose connections
// reach ports on localhost inside a running pod's network namespace.
func (s *Server) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	if s.b.Pods == nil {
		return nil, unimplemented("PortForward")
	}
	sb, err := s.sandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if sb.State == nil || !sb.State.Running {
		return nil, errdefs.Conflictf("pod sandbox %s is not ready", sb.ID)
	}
	for _, p := range req.GetPort() {
		if p <= 0 || p > 65535 {
			return nil, errdefs.InvalidArgumentf("port %d is out of range", p)
		}
	}
	srv, err := s.stream.server()
	if err != nil {
		return nil, err
	}
	r := proto.Clone(req).(*runtimeapi.PortForwardRequest)
	r.PodSandboxId = sb.ID
	return srv.GetPortForward(r)
}

// runningCtr is the full ID of CRI container id, which must be running.
func (s *Server) runningCtr(id string) (string, error) {
	c, err := s.ctr(id)
	if err != nil {
		return "", err
	}
	if c.State == nil || !c.State.Running {
		return "", errdefs.Conflictf("container %s is not running", c.ID)
	}
	if c.State.Paused {
		return "", errdefs.Conflictf("container %s is paused", c.ID)
	}
	return c.ID, nil
}

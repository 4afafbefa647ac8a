package cri

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/version"
)

// runtimeName is what Version reports as the runtime's name.
const runtimeName = "lodge"

// Backends are the daemon's services the CRI is served over.
type Backends struct {
	Containers Containers
	Execs      Execs
	Networks   Networks
	Images     Images
	// Resources samples containers' cgroups and changes their limits.
	Resources Resources
	// PauseBinary is lodge-init, static: the pause image is made of it.
	PauseBinary string
	// PodSubnet is the pod network's subnet (DefaultPodSubnet if empty).
	PodSubnet string
	// ImageRoot is where the store keeps its layers (ImageFsInfo's
	// mountpoint).
	ImageRoot string
	// Attach serves the CRI's Attach; nil answers Unimplemented.
	Attach Attacher
	// Pods serves PortForward; nil answers Unimplemented.
	Pods PodDialer
	// StreamAddress is the host:port the streaming server of Exec,
	// Attach and PortForward listens on (DefaultStreamAddress if empty).
	StreamAddress string
}

// Server is the CRI's runtime and image services.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	b      Backends
	log    *slog.Logger
	stream *streamServer

	pauseMu sync.Mutex // one making of the pause image
	netMu   sync.Mutex // one making of the pod network

	cgroupParentOnce sync.Once // the warning that pods' cgroup parents are ignored

	rates, podRates cpuRates // the last CPU samples, for usage_nano_cores
}

// New returns a server over b.
func New(b Backends, log *slog.Logger) *Server {
	s := &Server{b: b, log: log}
	s.stream = newStreamServer(b.StreamAddress, streamRuntime{s}, log)
	return s
}

// Serve answers the CRI on l until ctx ends or l fails; the streaming
// server stops with it.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	defer s.stream.close()
	g := grpc.NewServer(
		grpc.ChainUnaryInterceptor(s.unaryErrors),
		grpc.ChainStreamInterceptor(streamErrors),
	)
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	runtimeapi.RegisterImageServiceServer(g, s)
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		g.Stop() // the kubelet retries; nothing here is worth waiting for
		if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return err
		}
		return nil
	}
}

// unaryErrors names what is not built in lodge's words, and logs calls
// that fail.
func (s *Server) unaryErrors(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	if err != nil {
		err = grpcError(notBuilt(info.FullMethod, err))
		s.log.Debug("CRI call failed", "method", info.FullMethod, "err", err)
	}
	return resp, err
}

func streamErrors(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := h(srv, ss); err != nil {
		return grpcError(notBuilt(info.FullMethod, err))
	}
	return nil
}

// notBuilt rewrites the generated stubs' "method X not implemented" as
// lodge's "lodge: X is not implemented yet"; other errors pass as they are.
func notBuilt(fullMethod string, err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unimplemented || !strings.HasPrefix(st.Message(), "method ") {
		return err
	}
	name := fullMethod[strings.LastIndex(fullMethod, "/")+1:]
	return unimplemented(name)
}

// grpcError gives lodge's error classes their gRPC codes.
func grpcError(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Unknown
	switch {
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, errdefs.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, errdefs.ErrInvalidArgument):
		code = codes.InvalidArgument
	case errors.Is(err, errdefs.ErrConflict):
		code = codes.FailedPrecondition
	case errors.Is(err, errdefs.ErrPermissionDenied):
		code = codes.PermissionDenied
	case errors.Is(err, errdefs.ErrUnauthorized):
		code = codes.Unauthenticated
	case errors.Is(err, errdefs.ErrUnavailable):
		code = codes.Unavailable
	case errors.Is(err, errdefs.ErrNotImplemented):
		code = codes.Unimplemented
	}
	return status.Error(code, err.Error())
}

// unimplemented is the answer of a CRI call lodge does not serve yet.
func unimplemented(what string) error {
	return status.Errorf(codes.Unimplemented, "lodge: %s is not implemented yet", what)
}

// Version answers the runtime's name and version.
func (s *Server) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           "0.1.0",
		RuntimeName:       runtimeName,
		RuntimeVersion:    version.Version,
		RuntimeApiVersion: "v1",
	}, nil
}

// Status reports whether the runtime and the pod network are ready.
func (s *Server) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	rt := &runtimeapi.RuntimeCondition{Type: runtimeapi.RuntimeReady, Status: true}
	nw := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if s.b.Networks == nil {
		nw.Status, nw.Reason, nw.Message = false, "NoPodNetwork", "lodge serves no pod network"
	} else if err := s.podNetwork(ctx); err != nil {
		nw.Status, nw.Reason, nw.Message = false, "PodNetworkUnavailable", err.Error()
	}
	resp := &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{rt, nw}}}
	if req.GetVerbose() {
		resp.Info = map[string]string{"runtime": fmt.Sprintf("lodge %s (rootless)", version.Version)}
	}
	return resp, nil
}

// RuntimeConfig reports the cgroup driver: lodge manages its own cgroup
// tree under its delegated cgroup, with no systemd unit per container.
func (s *Server) RuntimeConfig(context.Context, *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: runtimeapi.CgroupDriver_CGROUPFS}}, nil
}

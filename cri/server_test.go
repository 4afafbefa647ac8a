package cri

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/paths"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// serve starts s on a socket in a temporary directory and returns a
// client connected to it.
func serve(t *testing.T, s *Server) *grpc.ClientConn {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "cri.sock")
	l, err := Listen(sock, os.Getuid(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, s, l, sock)
}

func serveOn(t *testing.T, s *Server, l net.Listener, sock string) *grpc.ClientConn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	cc, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestVersionStatusConfig(t *testing.T) {
	netErr := errors.New("no pods network yet")
	nets := &fakeNetworks{createErr: netErr}
	s := New(Backends{Networks: nets}, quiet)
	rt := runtimeapi.NewRuntimeServiceClient(serve(t, s))
	ctx := context.Background()

	v, err := rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if v.RuntimeName != "lodge" || v.RuntimeApiVersion != "v1" || v.RuntimeVersion == "" {
		t.Errorf("Version = %+v", v)
	}
	st, err := rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	conds := map[string]*runtimeapi.RuntimeCondition{}
	for _, c := range st.Status.Conditions {
		conds[c.Type] = c
	}
	if c := conds[runtimeapi.RuntimeReady]; c == nil || !c.Status {
		t.Errorf("RuntimeReady = %v", c)
	}
	if c := conds[runtimeapi.NetworkReady]; c == nil || c.Status || c.Message != netErr.Error() {
		t.Errorf("NetworkReady with the network failing = %v", c)
	}
	nets.createErr = nil
	st, err = rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Status.Conditions {
		if !c.Status {
			t.Errorf("%s is false with the network ready: %v", c.Type, c)
		}
	}
	if nets.made == nil || nets.made.Name != PodNetwork || nets.made.IPAM.Config[0].Subnet.String() != DefaultPodSubnet {
		t.Errorf("pod network made as %+v", nets.made)
	}
	rc, err := rt.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if rc.GetLinux().GetCgroupDriver() != runtimeapi.CgroupDriver_CGROUPFS {
		t.Errorf("cgroup driver = %v", rc.GetLinux().GetCgroupDriver())
	}
}

// What is not built says so, by name, with Unimplemented: never a fake
// success.
func TestNotBuiltIsUnimplemented(t *testing.T) {
	cc := serve(t, New(Backends{}, quiet))
	rt := runtimeapi.NewRuntimeServiceClient(cc)
	_, err := rt.PortForward(context.Background(), &runtimeapi.PortForwardRequest{PodSandboxId: "x"})
	if st, _ := status.FromError(err); st.Code() != codes.Unimplemented || st.Message() != "lodge: PortForward is not implemented yet" {
		t.Errorf("PortForward = %v", err)
	}
	stream, err := rt.GetContainerEvents(context.Background(), &runtimeapi.GetEventsRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if st, _ := status.FromError(err); st.Code() != codes.Unimplemented || st.Message() != "lodge: GetContainerEvents is not implemented yet" {
		t.Errorf("GetContainerEvents = %v", err)
	}
}

// A peer that is not the owner gets no answer; the socket is 0600.
func TestOtherUIDRefused(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "cri.sock")
	l, err := Listen(sock, os.Getuid(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	l.(*paths.OwnerListener).PeerUID = func(net.Conn) (int, error) { return os.Getuid() + 1, nil }
	rt := runtimeapi.NewRuntimeServiceClient(serveOn(t, New(Backends{}, quiet), l, sock))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := rt.Version(ctx, &runtimeapi.VersionRequest{}); status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("Version from another uid = %v, want the connection refused", err)
	}
}

// fakeNetworks has no network until one is made.
type fakeNetworks struct {
	made      *network.CreateRequest
	createErr error
}

func (f *fakeNetworks) Inspect(_ context.Context, ref string) (network.Inspect, error) {
	if f.made != nil && f.made.Name == ref {
		return network.Inspect{}, nil
	}
	return network.Inspect{}, errdefs.NotFoundf("network %s not found", ref)
}

func (f *fakeNetworks) Create(_ context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	if f.createErr != nil {
		return network.CreateResponse{}, f.createErr
	}
	f.made = &req
	return network.CreateResponse{ID: "n1"}, nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/cri"
	"github.com/lodge-containers/lodge/daemon"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/netns"
	"github.com/lodge-containers/lodge/paths"
)

// criOptions are lodged's settings of the CRI.
type criOptions struct {
	podSubnet string
	// streamAddress is the host:port of the streaming server behind
	// Exec, Attach and PortForward.
	streamAddress string
}

// serveCRI serves the Kubernetes CRI on its socket beside the API's until
// ctx ends or the function it returns is called, which stops the server
// and waits for it.
func serveCRI(ctx context.Context, log *slog.Logger, env paths.Env, svc *services, ctrs daemon.ContainerAPI, o criOptions) (func(), error) {
	if err := checkStreamAddress(o.streamAddress); err != nil {
		return nil, err
	}
	sock := env.CRISocket()
	l, err := cri.Listen(sock, os.Getuid(), log)
	if err != nil {
		return nil, fmt.Errorf("CRI socket: %w", err)
	}
	pause, err := paths.Helper("lodge-init")
	if err != nil {
		log.Warn("lodge-init is not installed beside lodged: CRI pod sandboxes cannot start", "err", err)
	}
	s := cri.New(cri.Backends{
		Containers: ctrs, Resources: ctrs, Execs: daemon.ExecAPI(svc.containers),
		Networks: daemon.NetworkAPI{NetworkStore: svc.networks, Containers: svc.containers},
		Images:   svc.images, ImageRoot: svc.store.GraphRoot(),
		PauseBinary: pause, PodSubnet: o.podSubnet,
		Attach: ctrs, Pods: podDialer{ctrs}, StreamAddress: o.streamAddress,
	}, log)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(ctx, l); err != nil {
			log.Error("CRI server", "err", err)
		}
	}()
	log.Info("CRI served", "socket", sock)
	return func() { cancel(); <-done }, nil
}

// checkStreamAddress refuses a streaming address lodged could never
// listen on, at start rather than at a pod's first exec.
func checkStreamAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--cri-stream-address %q: %w", addr, err)
	}
	if net.ParseIP(host) == nil {
		return fmt.Errorf("--cri-stream-address %q: the host must be an IP address", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("--cri-stream-address %q: port: %w", addr, err)
	}
	return nil
}

// inspector reads a container's record.
type inspector interface {
	Inspect(ref string) (container.InspectResponse, error)
}

// podDialer reaches a pod's ports from a thread inside its sandbox's
// network namespace, as the kubelet's port-forward expects: localhost in
// the pod, no host port.
type podDialer struct{ ctrs inspector }

// DialPod connects to port on the pod's loopback, IPv4 first, then IPv6.
func (d podDialer) DialPod(ctx context.Context, sandboxID string, port int32) (net.Conn, error) {
	sb, err := d.ctrs.Inspect(sandboxID)
	if err != nil {
		return nil, err
	}
	if sb.State == nil || !sb.State.Running || sb.State.Pid <= 0 {
		return nil, errdefs.Conflictf("pod sandbox %s is not running", sb.ID)
	}
	// The pinned namespace of a pod on the pod network; the pause
	// process's own (lodged's, for a pod on the host's network) else.
	ns := fmt.Sprintf("/proc/%d/ns/net", sb.State.Pid)
	if sb.NetworkSettings != nil && sb.NetworkSettings.SandboxKey != "" {
		ns = sb.NetworkSettings.SandboxKey
	}
	var conn net.Conn
	err = netns.Do(ns, func() error {
		// The socket is made on this thread, so it lives in the pod's
		// namespace whichever thread later serves it.
		var dial net.Dialer
		var derr error
		for _, host := range []string{"127.0.0.1", "::1"} {
			conn, derr = dial.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
			if derr == nil || !errors.Is(derr, syscall.ECONNREFUSED) && !errors.Is(derr, syscall.EADDRNOTAVAIL) && !errors.Is(derr, syscall.ENETUNREACH) {
				return derr
			}
		}
		return derr
	})
	if err != nil {
		return nil, fmt.Errorf("port %d in pod sandbox %s: %w", port, sb.ID, err)
	}
	return conn, nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/containers/gvisor-tap-vsock/pkg/types"
	"github.com/containers/gvisor-tap-vsock/pkg/virtualnetwork"
	"github.com/rootless-containers/rootlesskit/v3/pkg/messages"
	"github.com/rootless-containers/rootlesskit/v3/pkg/network/gvisortapvsock"

	"github.com/lodge-containers/lodge/netns"
)

// reattach runs the virtual network and the tap forwarder of an uplink
// whose helpers died, in one process already in lodged's user namespace.
// The network is the one rootlesskit's parent half builds (the same
// subnet, gateway, gateway MAC and host-loopback NAT), so what containers
// see of the uplink does not change.
func reattach(stateDir, nsPath string) (func() error, error) {
	_, ipnet, err := net.ParseCIDR(netns.UplinkCIDR)
	if err != nil {
		return nil, err
	}
	gw := netns.UsernetGateway.String()
	vn, err := virtualnetwork.New(&types.Configuration{
		MTU:               netns.UsernetMTU,
		Subnet:            ipnet.String(),
		GatewayIP:         gw,
		GatewayMacAddress: "5a:94:ef:e4:0c:dd",
		DHCPStaticLeases:  map[string]string{},
		Ec2MetadataAccess: true,
		NAT:               map[string]string{gw: "127.0.0.1"},
	})
	if err != nil {
		return nil, fmt.Errorf("virtual network: %w", err)
	}
	dir := filepath.Join(stateDir, "gvisortapvsock")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// A socket of this process's own: the dead parent half's tap.sock
	// is removed by that half itself when it notices its parent died
	// (up to a second later, closing its listener), which would take a
	// new socket at the same path with it.
	sock := filepath.Join(dir, fmt.Sprintf("tap.%d.sock", os.Getpid()))
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cleanup := func() error { cancel(); return l.Close() }
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				// The switch logs why a connection ended itself
				// (logrus, on this helper's stderr).
				_ = vn.AcceptStdio(ctx, c)
			}()
		}
	}()
	msg := &messages.ParentInitNetworkDriverCompleted{
		Dev:                 "tap0",
		NetworkDriverOpaque: map[string]string{"socketPath": sock},
	}
	if _, err := gvisortapvsock.NewChildDriver().ConfigureNetworkChild(msg, nsPath); err != nil {
		return cleanup, err
	}
	return cleanup, nil
}

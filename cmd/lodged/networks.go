package main

import (
	"log/slog"
	"path/filepath"

	"github.com/lodge-containers/lodge/daemon"
	netsvc "github.com/lodge-containers/lodge/daemon/network"
	"github.com/lodge-containers/lodge/netns"
	"github.com/lodge-containers/lodge/userns"
)

// startNetworks wires the network service: bridges in lodged's detached
// namespace, published ports through rootlesskit's port driver (its API
// socket in the state dir) and a name server per user-defined network.
func startNetworks(dataRoot, runDir, uplinkNS, driver string, ev *daemon.Events, log *slog.Logger) (*netsvc.Networks, error) {
	cfg := netsvc.Config{Root: filepath.Join(dataRoot, "networks"), RunDir: runDir, Log: log, Events: ev}
	cfg.HostLoopback, cfg.UplinkDNS = netns.UplinkAddrs(driver)
	if uplinkNS != "" {
		cfg.Fabric = &netns.Fabric{UplinkNS: uplinkNS}
		// Two namespaces linked to the default bridge ahead of the
		// starts: a start then only configures one (issue 20).
		cfg.Spares = 2
		cfg.Resolver = netns.NewResolver(uplinkNS)
	} else {
		log.Warn("lodged has no network namespace of its own: containers get loopback only")
	}
	if dir := userns.StateDir(); dir != "" {
		p, err := netns.NewPorts(filepath.Join(dir, "api.sock"))
		if err != nil {
			log.Warn("no port driver: publishing ports will fail", "err", err)
		} else {
			cfg.Ports = p
		}
	}
	return netsvc.New(cfg)
}

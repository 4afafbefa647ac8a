package daemon

import (
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// Which networks a container's configuration puts it on, read from its
// network mode and networking config; the sandbox wires them.

// isBridgeMode reports whether a network mode puts the container on
// bridge networks (the default one or a named one).
func isBridgeMode(mode string) bool {
	switch {
	case mode == "host", mode == "none", strings.HasPrefix(mode, "container:"):
		return false
	}
	return true
}

// primaryNetwork is the network a mode names: "bridge" for the default.
func primaryNetwork(mode string) string {
	if mode == "" || mode == network.NetworkDefault {
		return network.NetworkBridge
	}
	return mode
}

// skipsDefaultBridge tells whether a create in the default network mode
// names, in its networking config, only networks other than the default
// bridge: then it joins just those, as in Docker.
func skipsDefaultBridge(hc *container.HostConfig, nc *network.NetworkingConfig) bool {
	if mode := hc.NetworkMode; mode != "" && mode != network.NetworkDefault || nc == nil || len(nc.EndpointsConfig) == 0 {
		return false
	}
	for name := range nc.EndpointsConfig {
		if name == network.NetworkBridge || name == network.NetworkDefault {
			return false
		}
	}
	return true
}

// configuredNetworks lists the networks a container is configured for:
// its mode's first, then the other endpoints of its networking config.
// Callers hold c.mu.
func configuredNetworks(c *Container) []string {
	mode := string(c.HostConfig.NetworkMode)
	if !isBridgeMode(mode) {
		return nil
	}
	primary := primaryNetwork(mode)
	var out []string
	if !c.PrimaryDisconnected {
		out = []string{primary}
	}
	if c.NetworkingConfig != nil {
		var more []string
		for name := range c.NetworkingConfig.EndpointsConfig {
			if name != primary && !(primary == network.NetworkBridge && name == network.NetworkDefault) {
				more = append(more, name)
			}
		}
		sort.Strings(more)
		out = append(out, more...)
	}
	return out
}

// endpointConfig is the container's configuration for one of its
// networks: the docker CLI files the default bridge's under "default".
// Callers hold c.mu.
func endpointConfig(c *Container, name string) *network.EndpointSettings {
	if c.NetworkingConfig == nil {
		return nil
	}
	if es := c.NetworkingConfig.EndpointsConfig[name]; es != nil {
		return es
	}
	if name == network.NetworkBridge {
		return c.NetworkingConfig.EndpointsConfig[network.NetworkDefault]
	}
	return nil
}

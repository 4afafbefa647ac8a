package network

import (
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// Which networks a container's configuration puts it on, read from its
// network mode and networking config; the sandbox wires them.

// IsBridgeMode reports whether a network mode puts the container on
// bridge networks (the default one or a named one).
func IsBridgeMode(mode string) bool {
	switch {
	case mode == "host", mode == "none", strings.HasPrefix(mode, "container:"):
		return false
	}
	return true
}

// PrimaryNetwork is the network a mode names: "bridge" for the default.
func PrimaryNetwork(mode string) string {
	if mode == "" || mode == network.NetworkDefault {
		return network.NetworkBridge
	}
	return mode
}

// SkipsDefaultBridge tells whether a create in the default network mode
// names, in its networking config, only networks other than the default
// bridge: then it joins just those, as in Docker.
func SkipsDefaultBridge(hc *container.HostConfig, nc *network.NetworkingConfig) bool {
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

// ConfiguredNetworks lists the networks a configuration puts a container
// on: its mode's first (unless disconnected from it), then the other
// endpoints of its networking config, by name.
func ConfiguredNetworks(mode string, endpoints map[string]*network.EndpointSettings, primaryDisconnected bool) []string {
	if !IsBridgeMode(mode) {
		return nil
	}
	primary := PrimaryNetwork(mode)
	var out []string
	if !primaryDisconnected {
		out = []string{primary}
	}
	var more []string
	for name := range endpoints {
		if name != primary && !(primary == network.NetworkBridge && name == network.NetworkDefault) {
			more = append(more, name)
		}
	}
	sort.Strings(more)
	return append(out, more...)
}

// Spec is a container as the network service sees it: plain values
// the container side copies from its record under its own lock. The
// network service keeps no reference to the record and takes no
// container's lock.
type Spec struct {
	ID, Name, Hostname string
	// Links are HostConfig.Links, as the CLI or inspect writes them.
	Links []string
	// Mode is HostConfig.NetworkMode; Endpoints the networking config's
	// endpoints by the name the container gave them (copies);
	// PrimaryDisconnected is set when the mode's network was disconnected.
	Mode                string
	Endpoints           map[string]*network.EndpointSettings
	PrimaryDisconnected bool
	// ExposedPorts, PortBindings and PublishAll say what to publish.
	ExposedPorts network.PortSet
	PortBindings network.PortMap
	PublishAll   bool
}

// networks lists the networks the container is configured for.
func (sp *Spec) networks() []string {
	return ConfiguredNetworks(sp.Mode, sp.Endpoints, sp.PrimaryDisconnected)
}

// endpointConfig is the container's configuration for one of its
// networks: the docker CLI files the default bridge's under "default".
func (sp *Spec) endpointConfig(name string) *network.EndpointSettings {
	if es := sp.Endpoints[name]; es != nil {
		return es
	}
	if name == network.NetworkBridge {
		return sp.Endpoints[network.NetworkDefault]
	}
	return nil
}

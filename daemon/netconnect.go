package daemon

import (
	"context"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/errdefs"
)

// Connect adds a network to a container: to its configuration, and to its
// running namespace at once when it runs.
func (n *Networks) Connect(ctx context.Context, netRef, ctrRef string, es *network.EndpointSettings) error {
	c, err := n.containers.Get(ctrRef)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !isBridgeMode(string(c.HostConfig.NetworkMode)) {
		return errdefs.InvalidArgumentf("container sharing network namespace with another container or host cannot be connected to any other network")
	}
	n.mu.Lock()
	r, err := n.lookup(netRef)
	n.mu.Unlock()
	if err != nil {
		return err
	}
	sb := n.sandboxFor(c.ID)
	attached := false
	if sb != nil && c.running() {
		n.mu.Lock()
		for _, e := range sb.Endpoints {
			attached = attached || e.NetworkID == r.ID
		}
		n.mu.Unlock()
	} else {
		for _, name := range configuredNetworks(c) {
			attached = attached || name == r.Name || name == r.ID
		}
	}
	if attached {
		return errdefs.PermissionDeniedf("endpoint with name %s already exists in network %s", c.Name, r.Name)
	}
	if es == nil {
		es = &network.EndpointSettings{}
	}
	if sb != nil && c.running() {
		if err := n.join(c, sb, r.Name, es, false); err != nil {
			n.dropEndpoint(sb, r.ID)
			return err
		}
	}
	if c.NetworkingConfig == nil {
		c.NetworkingConfig = &network.NetworkingConfig{}
	}
	if c.NetworkingConfig.EndpointsConfig == nil {
		c.NetworkingConfig.EndpointsConfig = map[string]*network.EndpointSettings{}
	}
	c.NetworkingConfig.EndpointsConfig[r.Name] = es
	if isPrimary(c, r) {
		c.PrimaryDisconnected = false
	}
	return n.containers.save(c)
}

// Disconnect removes a network from a container's configuration and, when
// it runs, its link on that network.
func (n *Networks) Disconnect(ctx context.Context, netRef, ctrRef string, force bool) error {
	c, err := n.containers.Get(ctrRef)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n.mu.Lock()
	r, err := n.lookup(netRef)
	n.mu.Unlock()
	if err != nil {
		return err
	}
	found := false
	for _, name := range configuredNetworks(c) {
		if name == r.Name || name == r.ID {
			found = true
		}
	}
	if !found {
		return errdefs.PermissionDeniedf("container %s is not connected to network %s", c.ID[:12], r.Name)
	}
	if sb := n.sandboxFor(c.ID); sb != nil {
		n.dropEndpoint(sb, r.ID)
		n.emit(events.ActionDisconnect, r, c.ID)
	}
	if c.NetworkingConfig != nil {
		delete(c.NetworkingConfig.EndpointsConfig, r.Name)
		delete(c.NetworkingConfig.EndpointsConfig, r.ID)
	}
	if isPrimary(c, r) {
		c.PrimaryDisconnected = true
	}
	return n.containers.save(c)
}

// isPrimary tells whether r is the network the container's mode names.
// Callers hold c.mu.
func isPrimary(c *Container, r *netRecord) bool {
	p := primaryNetwork(string(c.HostConfig.NetworkMode))
	return p == r.Name || p == r.ID
}

// dropEndpoint removes a sandbox's link on one network and frees its
// address.
func (n *Networks) dropEndpoint(sb *sandbox, networkID string) {
	n.mu.Lock()
	var keep []endpoint
	var gone []endpoint
	for _, e := range sb.Endpoints {
		if e.NetworkID == networkID {
			gone = append(gone, e)
		} else {
			keep = append(keep, e)
		}
	}
	sb.Endpoints = keep
	if err := n.saveSandbox(sb.ContainerID, sb); err != nil {
		// The link goes anyway; a restarted lodged would think the
		// address still taken until the container stops.
		n.Log.Warn("saving a sandbox record", "container", sb.ContainerID, "err", err)
	}
	n.mu.Unlock()
	if n.Fabric != nil {
		for _, e := range gone {
			if err := n.Fabric.Detach(e.HostIf); err != nil {
				n.Log.Warn("removing a container's link", "container", sb.ContainerID, "link", e.HostIf, "err", err)
			}
		}
	}
}

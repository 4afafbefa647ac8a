package daemon

import (
	"context"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/errdefs"
)

// NetworkAPI is the network routes' backend: the network service, with
// connect and disconnect done by the engine, since they change a
// container's record as well as its sandbox.
type NetworkAPI struct {
	*Networks
	Containers *Containers
}

// Connect adds a network to a container (see Containers.Connect).
func (a NetworkAPI) Connect(ctx context.Context, netRef, ctrRef string, es *network.EndpointSettings) error {
	return a.Containers.Connect(ctx, netRef, ctrRef, es)
}

// Disconnect removes a network from a container (see
// Containers.Disconnect).
func (a NetworkAPI) Disconnect(ctx context.Context, netRef, ctrRef string, force bool) error {
	return a.Containers.Disconnect(ctx, netRef, ctrRef, force)
}

// Connect adds a network to a container: to its configuration, and to its
// running namespace at once when it runs.
func (s *Containers) Connect(ctx context.Context, netRef, ctrRef string, es *network.EndpointSettings) error {
	if s.Networks == nil {
		return errdefs.Unavailablef("lodged has no network service")
	}
	c, err := s.Get(ctrRef)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !isBridgeMode(string(c.HostConfig.NetworkMode)) {
		return errdefs.InvalidArgumentf("container sharing network namespace with another container or host cannot be connected to any other network")
	}
	ref, err := s.Networks.Ref(netRef)
	if err != nil {
		return err
	}
	running := c.running() && s.Networks.NSPath(c.ID) != ""
	attached := false
	if running {
		attached = s.Networks.OnNetwork(c.ID, ref.ID)
	} else {
		for _, name := range c.configuredNetworks() {
			attached = attached || name == ref.Name || name == ref.ID
		}
	}
	if attached {
		return errdefs.PermissionDeniedf("endpoint with name %s already exists in network %s", c.Name, ref.Name)
	}
	if es == nil {
		es = &network.EndpointSettings{}
	}
	if running {
		if err := s.Networks.Join(c.ID, ref, es); err != nil {
			return err
		}
	}
	if c.NetworkingConfig == nil {
		c.NetworkingConfig = &network.NetworkingConfig{}
	}
	if c.NetworkingConfig.EndpointsConfig == nil {
		c.NetworkingConfig.EndpointsConfig = map[string]*network.EndpointSettings{}
	}
	c.NetworkingConfig.EndpointsConfig[ref.Name] = es
	if isPrimary(c, ref) {
		c.PrimaryDisconnected = false
	}
	return s.save(c)
}

// Disconnect removes a network from a container's configuration and, when
// it runs, its link on that network.
func (s *Containers) Disconnect(ctx context.Context, netRef, ctrRef string, force bool) error {
	if s.Networks == nil {
		return errdefs.Unavailablef("lodged has no network service")
	}
	c, err := s.Get(ctrRef)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ref, err := s.Networks.Ref(netRef)
	if err != nil {
		return err
	}
	found := false
	for _, name := range c.configuredNetworks() {
		if name == ref.Name || name == ref.ID {
			found = true
		}
	}
	if !found {
		return errdefs.PermissionDeniedf("container %s is not connected to network %s", c.ID[:12], ref.Name)
	}
	s.Networks.Leave(c.ID, ref)
	if c.NetworkingConfig != nil {
		delete(c.NetworkingConfig.EndpointsConfig, ref.Name)
		delete(c.NetworkingConfig.EndpointsConfig, ref.ID)
	}
	if isPrimary(c, ref) {
		c.PrimaryDisconnected = true
	}
	return s.save(c)
}

// NetRef is a network as the engine names it: its ID and name.
type NetRef struct{ ID, Name string }

// Ref finds a network by name, ID or ID prefix.
func (n *Networks) Ref(ref string) (NetRef, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	r, err := n.lookup(ref)
	if err != nil {
		return NetRef{}, err
	}
	return NetRef{ID: r.ID, Name: r.Name}, nil
}

// OnNetwork tells whether the running container id has an endpoint on
// the network.
func (n *Networks) OnNetwork(id, networkID string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if sb := n.sandboxes[id]; sb != nil {
		for _, e := range sb.Endpoints {
			if e.NetworkID == networkID {
				return true
			}
		}
	}
	return false
}

// Join gives the running container id an endpoint on one more network.
// On error nothing of it is left.
func (n *Networks) Join(id string, ref NetRef, es *network.EndpointSettings) error {
	sb := n.sandboxFor(id)
	if sb == nil {
		return errdefs.Conflictf("container %s is not running", id)
	}
	if err := n.join(sb, ref.Name, es, false); err != nil {
		n.dropEndpoint(sb, ref.ID)
		return err
	}
	return nil
}

// Leave removes the running container id's endpoint on a network, if it
// has one.
func (n *Networks) Leave(id string, ref NetRef) {
	sb := n.sandboxFor(id)
	if sb == nil {
		return
	}
	n.dropEndpoint(sb, ref.ID)
	n.mu.Lock()
	r := n.nets[ref.ID]
	n.mu.Unlock()
	if r != nil {
		n.emit(events.ActionDisconnect, r, id)
	}
}

// isPrimary tells whether r is the network the container's mode names.
// Callers hold c.mu.
func isPrimary(c *Container, r NetRef) bool {
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

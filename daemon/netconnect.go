package daemon

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/network"

	netsvc "github.com/lodge-containers/lodge/daemon/network"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/image"
)

// NetworkAPI is the network routes' backend: the network service, with
// connect and disconnect done by the engine, since they change a
// container's record as well as its sandbox.
type NetworkAPI struct {
	NetworkStore
	Containers *Containers
}

// Prune is docker network prune: the unused user-defined networks the
// filters (until, label, label!) select, as Docker takes them.
func (n NetworkAPI) Prune(ctx context.Context, filters map[string][]string) (network.PruneReport, error) {
	f, err := image.ParseObjectPruneFilter(filters)
	if err != nil {
		return network.PruneReport{}, err
	}
	return n.NetworkStore.Prune(ctx, f.Matches)
}

// NetworkStore is the network service's own routes: list, inspect,
// create, remove and prune (*netsvc.Networks fits).
type NetworkStore interface {
	List(ctx context.Context, filters map[string][]string) ([]network.Inspect, error)
	Inspect(ctx context.Context, ref string) (network.Inspect, error)
	Create(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error)
	Remove(ctx context.Context, ref string) error
	Prune(ctx context.Context, match func(created time.Time, labels map[string]string) bool) (network.PruneReport, error)
}

var _ NetworkStore = (*netsvc.Networks)(nil)

// Connect adds a network to a container (see netGlue.Connect).
func (a NetworkAPI) Connect(ctx context.Context, netRef, ctrRef string, es *network.EndpointSettings) error {
	return a.Containers.net.Connect(ctx, netRef, ctrRef, es)
}

// Disconnect removes a network from a container (see
// netGlue.Disconnect).
func (a NetworkAPI) Disconnect(ctx context.Context, netRef, ctrRef string, force bool) error {
	return a.Containers.net.Disconnect(ctx, netRef, ctrRef, force)
}

// Connect adds a network to a container: to its configuration, and to its
// running namespace at once when it runs.
func (g *netGlue) Connect(ctx context.Context, netRef, ctrRef string, es *network.EndpointSettings) error {
	if g.nw == nil {
		return errdefs.Unavailablef("lodged has no network service")
	}
	c, err := g.recs.get(ctrRef)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !netsvc.IsBridgeMode(string(c.HostConfig.NetworkMode)) {
		return errdefs.InvalidArgumentf("container sharing network namespace with another container or host cannot be connected to any other network")
	}
	ref, err := g.nw.Ref(netRef)
	if err != nil {
		return err
	}
	running := c.running() && g.nw.NSPath(c.ID) != ""
	attached := false
	if running {
		attached = g.nw.OnNetwork(c.ID, ref.ID)
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
		if err := g.nw.Join(c.ID, ref, es); err != nil {
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
	return g.recs.save(c)
}

// Disconnect removes a network from a container's configuration and, when
// it runs, its link on that network.
func (g *netGlue) Disconnect(ctx context.Context, netRef, ctrRef string, force bool) error {
	if g.nw == nil {
		return errdefs.Unavailablef("lodged has no network service")
	}
	c, err := g.recs.get(ctrRef)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ref, err := g.nw.Ref(netRef)
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
	g.nw.Leave(c.ID, ref)
	if c.NetworkingConfig != nil {
		delete(c.NetworkingConfig.EndpointsConfig, ref.Name)
		delete(c.NetworkingConfig.EndpointsConfig, ref.ID)
	}
	if isPrimary(c, ref) {
		c.PrimaryDisconnected = true
	}
	return g.recs.save(c)
}

// isPrimary tells whether r is the network the container's mode names.
// Callers hold c.mu.
func isPrimary(c *Container, r netsvc.NetRef) bool {
	p := netsvc.PrimaryNetwork(string(c.HostConfig.NetworkMode))
	return p == r.Name || p == r.ID
}

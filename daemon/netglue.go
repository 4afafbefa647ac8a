package daemon

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	netsvc "github.com/lodge-containers/lodge/daemon/network"
)

// The container service's hooks into the network service, each a no-op
// when lodged runs without one (then a bridge-mode container gets a
// namespace with loopback only).

// NetworkService is the network service as the container side uses it
// (*netsvc.Networks fits). It is handed values copied under the
// container's lock, and never calls back: a container's lock may be held
// while calling it.
type NetworkService interface {
	Sandboxes
	NetworkSettings
	Connector
}

// Sandboxes give running bridge-mode containers their namespaces:
// Attach at start, Detach at the exit, Readopt and SetNames after a
// restart of lodged (SetNames also at a rename), DropStale for the
// containers that ended while no daemon ran.
type Sandboxes interface {
	Attach(ctx context.Context, sp netsvc.Spec) (nsPath string, err error)
	Detach(ctx context.Context, id string)
	Readopt(ctx context.Context, id string)
	SetNames(id, name, hostname string, links []string)
	DropStale(ctx context.Context, running map[string]bool)
}

// NetworkSettings are what a container's create, spec and inspect read
// of its networks.
type NetworkSettings interface {
	Validate(hc *container.HostConfig, nc *network.NetworkingConfig) error
	Settings(sp netsvc.Spec) *container.NetworkSettings
	NSPath(id string) string
	PrimaryIP(id string) string
	Etc(id string) netsvc.Etc
}

// Connector adds and removes a running container's endpoints (docker
// network connect and disconnect).
type Connector interface {
	Ref(ref string) (netsvc.NetRef, error)
	OnNetwork(id, networkID string) bool
	Join(id string, ref netsvc.NetRef, es *network.EndpointSettings) error
	Leave(id string, ref netsvc.NetRef)
}

var _ NetworkService = (*netsvc.Networks)(nil)

// netGlue is the container side of networking: it hands the network
// service copies of the records (attach at start, detach at the exit,
// settings for inspect and ps, /etc files for the spec), keeps a record's
// networks when one is connected or disconnected, and serves the legacy
// links. It reads other records only through the store; the container's
// own lock is its caller's.
type netGlue struct {
	nw   NetworkService // nil: lodged runs without one, loopback only
	recs *store
}

// netSpec copies what the network service needs of c: the service keeps
// no reference to the record. Callers hold c.mu.
func netSpec(c *Container) netsvc.Spec {
	sp := netsvc.Spec{ID: c.ID, Name: c.Name, PrimaryDisconnected: c.PrimaryDisconnected}
	if c.Config != nil {
		sp.Hostname = c.Config.Hostname
		sp.ExposedPorts = maps.Clone(c.Config.ExposedPorts)
	}
	if hc := c.HostConfig; hc != nil {
		sp.Mode = string(hc.NetworkMode)
		sp.Links = slices.Clone(hc.Links)
		sp.PublishAll = hc.PublishAllPorts
		if hc.PortBindings != nil {
			sp.PortBindings = network.PortMap{}
			for p, bs := range hc.PortBindings {
				sp.PortBindings[p] = slices.Clone(bs)
			}
		}
	}
	if c.NetworkingConfig != nil && c.NetworkingConfig.EndpointsConfig != nil {
		sp.Endpoints = map[string]*network.EndpointSettings{}
		for name, es := range c.NetworkingConfig.EndpointsConfig {
			sp.Endpoints[name] = es.Copy()
		}
	}
	return sp
}

// configuredNetworks lists the networks c's configuration puts it on.
// Callers hold c.mu.
func (c *Container) configuredNetworks() []string {
	var eps map[string]*network.EndpointSettings
	if c.NetworkingConfig != nil {
		eps = c.NetworkingConfig.EndpointsConfig
	}
	return netsvc.ConfiguredNetworks(string(c.HostConfig.NetworkMode), eps, c.PrimaryDisconnected)
}

// attach gives a starting bridge-mode container its sandbox. Callers
// hold c.mu.
func (g *netGlue) attach(ctx context.Context, c *Container) error {
	if g.nw == nil {
		return nil
	}
	_, err := g.nw.Attach(ctx, netSpec(c))
	return err
}

// detach frees a container's sandbox at its exit. Callers hold c.mu.
func (g *netGlue) detach(c *Container) {
	if g.nw != nil {
		// Bounded: it runs with the container's lock held, and a port
		// driver that does not answer must not wedge the container.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		g.nw.Detach(ctx, c.ID)
	}
}

// networkNS is the pinned namespace of a running bridge-mode container,
// "" for a fresh one.
func (g *netGlue) nsPath(c *Container) string {
	if g.nw == nil {
		return ""
	}
	return g.nw.NSPath(c.ID)
}

// settings are inspect's NetworkSettings. Callers hold c.mu.
func (g *netGlue) settings(c *Container) *container.NetworkSettings {
	if g.nw == nil {
		return &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{}}
	}
	return g.nw.Settings(netSpec(c))
}

// etcNet is what the container's /etc/hosts and /etc/resolv.conf get
// from its networks.
type etcNet struct {
	hosts      string // extra lines: the container's own addresses
	nameserver string // the network's name server, "" for the host's
	// hostGateway is the host's loopback seen from the container, and
	// uplinkDNS the uplink's DNS forwarder (see netsvc.Config).
	hostGateway, uplinkDNS string
}

// etcFor is what c's /etc files get from its networks.
func (g *netGlue) etcFor(c *Container) etcNet {
	if g.nw == nil {
		return etcNet{hostGateway: "10.0.2.2", uplinkDNS: "10.0.2.3"}
	}
	e := g.nw.Etc(c.ID)
	return etcNet{hosts: e.Hosts, nameserver: e.Nameserver, hostGateway: e.HostGateway, uplinkDNS: e.UplinkDNS}
}

// extraHosts reads --add-host entries ("name:ip" or "name=ip") as hosts
// lines; "host-gateway" is the host's loopback as the uplink shows it.
func extraHosts(entries []string, hostGateway string) string {
	var b strings.Builder
	for _, h := range entries {
		name, ip, ok := strings.Cut(h, "=")
		if !ok {
			name, ip, _ = strings.Cut(h, ":")
		}
		if ip == "host-gateway" {
			if ip = hostGateway; ip == "" {
				continue // no uplink, no way to the host
			}
		}
		b.WriteString(ip + "\t" + name + "\n")
	}
	return b.String()
}

// resolvConfFor is the container's resolv.conf: --dns, else its network's
// name server, else the host's (resolvConf); --dns-search and --dns-option
// replace the host's search and options lines.
func resolvConfFor(hc *container.HostConfig, nameserver, uplinkDNS string) []byte {
	var servers []string
	for _, d := range hc.DNS {
		servers = append(servers, d.String())
	}
	if len(servers) == 0 && nameserver != "" {
		servers = []string{nameserver}
	}
	var out []string
	for _, l := range strings.Split(string(resolvConf(uplinkDNS)), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 0:
			continue
		case f[0] == "nameserver" && len(servers) > 0:
			continue
		case (f[0] == "search" || f[0] == "domain") && len(hc.DNSSearch) > 0:
			continue
		case f[0] == "options" && len(hc.DNSOptions) > 0:
			continue
		}
		out = append(out, l)
	}
	for _, sv := range servers {
		out = append(out, "nameserver "+sv)
	}
	if len(hc.DNSSearch) > 0 {
		out = append(out, "search "+strings.Join(hc.DNSSearch, " "))
	}
	if len(hc.DNSOptions) > 0 {
		out = append(out, "options "+strings.Join(hc.DNSOptions, " "))
	}
	return []byte(strings.Join(out, "\n") + "\n")
}

// networkSummary is the network part of a `docker ps` row. Callers hold
// c.mu.
func (g *netGlue) summary(c *Container) (*container.NetworkSettingsSummary, []container.PortSummary) {
	ns := g.settings(c)
	ports := []container.PortSummary{}
	for p, bs := range ns.Ports {
		if len(bs) == 0 {
			ports = append(ports, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
		}
		for _, b := range bs {
			hp, _ := strconv.Atoi(b.HostPort)
			ports = append(ports, container.PortSummary{IP: b.HostIP, PrivatePort: p.Num(), PublicPort: uint16(hp), Type: string(p.Proto())})
		}
	}
	return &container.NetworkSettingsSummary{Networks: ns.Networks}, ports
}

// onNetworks is ps's network filter: the container is on one of the named
// networks (by name or ID prefix); no names pass every container.
func onNetworks(names []string, ns *container.NetworkSettingsSummary) bool {
	if len(names) == 0 {
		return true
	}
	for key, es := range ns.Networks {
		for _, n := range names {
			if n == key || es != nil && n != "" && strings.HasPrefix(es.NetworkID, n) {
				return true
			}
		}
	}
	return false
}

package network

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// What the sandboxes show: a container's inspect, its /etc files, the
// names the name servers answer, the endpoints a network's inspect lists.

// NSPath is the pinned namespace of a running bridge-mode container, ""
// when it has none.
func (s *Sandboxes) NSPath(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sb := s.sandboxes[id]; sb != nil {
		return sb.NSPath
	}
	return ""
}

// PrimaryIP is the address of a running container on its first network
// (what a legacy link's variables name), "" when it has none.
func (s *Sandboxes) PrimaryIP(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sb := s.sandboxes[id]; sb != nil && len(sb.Endpoints) > 0 {
		return sb.Endpoints[0].IP
	}
	return ""
}

// Settings is the NetworkSettings of a container's inspect: the
// operational data while it runs, its configuration otherwise. What it
// returns shares nothing with the service's state or with sp.
func (s *Sandboxes) Settings(sp Spec) *container.NetworkSettings {
	ns := &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{}, Ports: network.PortMap{}}
	for p := range sp.ExposedPorts {
		ns.Ports[p] = nil
	}
	for p := range sp.PortBindings {
		ns.Ports[p] = nil
	}
	names := sp.networks()
	nets := make([]*netInfo, len(names)) // nil for a network that does not exist
	for i, name := range names {
		if r, err := s.defs.find(name); err == nil {
			nets[i] = &r
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sb := s.sandboxes[sp.ID]
	for i, name := range names {
		es := &network.EndpointSettings{}
		if cfg := sp.endpointConfig(name); cfg != nil {
			es = cfg.Copy()
		}
		key := name
		if r := nets[i]; r != nil {
			key = r.Name
			es.NetworkID = r.ID
			if sb != nil {
				for _, e := range sb.Endpoints {
					if e.NetworkID == r.ID {
						es.EndpointID = e.EndpointID
						es.IPAddress, _ = netip.ParseAddr(e.IP)
						es.Gateway, _ = netip.ParseAddr(e.Gateway)
						es.IPPrefixLen = e.PrefixLen
						if e.IP6 != "" {
							es.GlobalIPv6Address, _ = netip.ParseAddr(e.IP6)
							es.GlobalIPv6PrefixLen = e.PrefixLen6
							es.IPv6Gateway, _ = netip.ParseAddr(e.Gateway6)
						}
						mac, _ := net.ParseMAC(e.MAC)
						es.MacAddress = network.HardwareAddr(mac)
						if !r.Builtin {
							es.DNSNames = sp.dnsNames(e.Aliases)
						}
					}
				}
			}
		}
		ns.Networks[key] = es
	}
	if mode := sp.Mode; !IsBridgeMode(mode) && !strings.HasPrefix(mode, "container:") {
		ns.Networks[mode] = &network.EndpointSettings{NetworkID: pseudoID(mode)}
	}
	if sb != nil {
		ns.SandboxID = sp.ID
		ns.SandboxKey = sb.NSPath
		for _, f := range sb.Ports {
			p, ok := network.PortFrom(uint16(f.Port), network.IPProtocol(f.Proto))
			if !ok {
				continue
			}
			ip, err := netip.ParseAddr(f.HostIP)
			if err != nil {
				ip = netip.IPv4Unspecified()
			}
			ns.Ports[p] = append(ns.Ports[p], network.PortBinding{HostIP: ip, HostPort: strconv.Itoa(f.HostPort)})
		}
	}
	return ns
}

// Etc is what a container's /etc/hosts and /etc/resolv.conf get from its
// networks.
type Etc struct {
	// Hosts are the lines for its own addresses and its links' (empty
	// when it has no sandbox); Nameserver is its first user-defined
	// network's name server, "" for the host's.
	Hosts, Nameserver string
	// HostGateway is the host's loopback seen from the container, and
	// UplinkDNS the uplink's DNS forwarder (see Config).
	HostGateway, UplinkDNS string
}

// Etc returns what the running container id's /etc files get from its
// networks.
func (s *Sandboxes) Etc(id string) Etc {
	s.mu.Lock()
	hosts := s.hostsLocked(id)
	var nets []string
	if sb := s.sandboxes[id]; sb != nil {
		for _, e := range sb.Endpoints {
			nets = append(nets, e.NetworkID)
		}
	}
	s.mu.Unlock()
	return Etc{Hosts: hosts, Nameserver: s.nameserver(nets), HostGateway: s.cfg.HostLoopback, UplinkDNS: s.cfg.UplinkDNS}
}

// hostsLocked is the /etc/hosts lines for a running container's own
// addresses, and for the running containers its links name. Callers hold
// s.mu.
func (s *Sandboxes) hostsLocked(id string) string {
	sb := s.sandboxes[id]
	if sb == nil {
		return ""
	}
	var b strings.Builder
	for _, e := range sb.Endpoints {
		fmt.Fprintf(&b, "%s\t%s\n", e.IP, sb.Hostname)
		if e.IP6 != "" {
			fmt.Fprintf(&b, "%s\t%s\n", e.IP6, sb.Hostname)
		}
	}
	// --link NAME[:ALIAS]: the linked container's address by both names,
	// as Docker writes it (the API form is "/name:/this/alias").
	for _, l := range sb.Links {
		name, alias, _ := strings.Cut(l, ":")
		name = strings.TrimPrefix(name, "/")
		alias = alias[strings.LastIndex(alias, "/")+1:]
		if osb := s.runningLocked(name); osb != nil && len(osb.Endpoints) > 0 {
			fmt.Fprintf(&b, "%s\t%s\n", osb.Endpoints[0].IP, strings.TrimSpace(alias+" "+name))
		}
	}
	return b.String()
}

// runningLocked is the sandbox of the running container ref names (its
// name, ID or a unique ID prefix of 12 or more), nil for none. Callers
// hold s.mu.
func (s *Sandboxes) runningLocked(ref string) *sandbox {
	if sb := s.sandboxes[ref]; sb != nil {
		return sb
	}
	var found *sandbox
	for _, sb := range s.sandboxes {
		if sb.Name == ref {
			return sb
		}
		if len(ref) >= 12 && strings.HasPrefix(sb.ContainerID, ref) {
			found = sb
		}
	}
	return found
}

// nameserver is the name server of the first user-defined network of a
// running container's (its gateway), or "" when it has none; nets are
// the networks of its endpoints, in order.
func (s *Sandboxes) nameserver(nets []string) string {
	if s.cfg.Resolver == nil {
		return ""
	}
	for _, id := range nets {
		if r, ok := s.defs.byID(id); ok && !r.Builtin {
			return r.Gateway
		}
	}
	return ""
}

// dnsNames are the names a container answers to on a user-defined
// network, in Docker's order: its name, its aliases there, its short ID
// and its hostname.
func (sp *Spec) dnsNames(aliases []string) []string {
	out := append([]string{sp.Name}, aliases...)
	out = append(out, sp.ID[:12])
	if sp.Hostname != "" {
		out = append(out, sp.Hostname)
	}
	seen := map[string]bool{}
	var uniq []string
	for _, s := range out {
		if !seen[s] {
			seen[s] = true
			uniq = append(uniq, s)
		}
	}
	return uniq
}

// resolve answers the name server: the addresses, on the network whose
// gateway is asked, of the running containers called name (by name, short
// or full id, hostname, or alias on that network), or of the container a
// link of the asking container (client) names by that alias.
func (s *Sandboxes) resolve(gateway, client net.IP, name string) []net.IP {
	netID := s.defs.atGateway(gateway.String())
	s.mu.Lock()
	defer s.mu.Unlock()
	// A link (--link other:alias) is a name only its container sees.
	target := ""
	if client != nil {
		for _, sb := range s.sandboxes {
			for _, e := range sb.Endpoints {
				if e.NetworkID != netID || !client.Equal(net.ParseIP(e.IP)) && !client.Equal(net.ParseIP(e.IP6)) {
					continue
				}
				for _, l := range sb.Links {
					other, alias, _ := strings.Cut(l, ":")
					other = strings.TrimPrefix(other, "/")
					alias = alias[strings.LastIndex(alias, "/")+1:]
					if strings.EqualFold(alias, name) || strings.EqualFold(other, name) {
						target = other
					}
				}
			}
		}
		if target != "" {
			if sb := s.runningLocked(target); sb != nil {
				target = sb.ContainerID
			}
		}
	}
	var out []net.IP
	for _, sb := range s.sandboxes {
		for _, e := range sb.Endpoints {
			if e.NetworkID != netID {
				continue
			}
			id := sb.ContainerID
			match := id == target || name == id || len(name) >= 12 && strings.HasPrefix(id, name) ||
				strings.EqualFold(sb.Name, name) || sb.Hostname != "" && strings.EqualFold(sb.Hostname, name)
			for _, a := range e.Aliases {
				match = match || strings.EqualFold(a, name)
			}
			if match {
				out = append(out, net.ParseIP(e.IP))
				if e.IP6 != "" {
					out = append(out, net.ParseIP(e.IP6))
				}
			}
		}
	}
	return out
}

// names are the containers ids name as a network's remove words them:
// their names (short IDs for those without a sandbox or a name), sorted,
// each once.
func (s *Sandboxes) names(ids []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, id := range ids {
		name := id[:12]
		if sb := s.sandboxes[id]; sb != nil && sb.Name != "" {
			name = sb.Name
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// endpointsOn adds the endpoints on network netID to an inspect's
// containers, by container ID.
func (s *Sandboxes) endpointsOn(netID string, into map[string]network.EndpointResource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sb := range s.sandboxes {
		for _, e := range sb.Endpoints {
			if e.NetworkID != netID {
				continue
			}
			ip, _ := netip.ParseAddr(e.IP)
			mac, _ := net.ParseMAC(e.MAC)
			res := network.EndpointResource{Name: sb.Name, EndpointID: e.EndpointID,
				MacAddress: network.HardwareAddr(mac), IPv4Address: netip.PrefixFrom(ip, e.PrefixLen)}
			if ip6, err := netip.ParseAddr(e.IP6); err == nil {
				res.IPv6Address = netip.PrefixFrom(ip6, e.PrefixLen6)
			}
			into[sb.ContainerID] = res
		}
	}
}

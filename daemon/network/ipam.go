package network

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/netns"
)

// validateIPAM checks a network's address configuration as Docker does
// before it creates anything, and words each fault as Docker does: one
// line, or a "* " list when there are several. IPv6 subnets are not
// checked when the network does not carry IPv6 (Docker ignores them then).
func validateIPAM(cfgs []network.IPAMConfig, enableIPv6 bool) error {
	var errs []string
	for _, c := range cfgs {
		if !c.Subnet.IsValid() {
			errs = append(errs, fmt.Sprintf("invalid subnet %s: invalid CIDR block notation", c.Subnet))
			continue
		}
		family := familyOf(c.Subnet.Addr())
		if family == "IPv6" && !enableIPv6 {
			continue
		}
		if c.Subnet != c.Subnet.Masked() {
			errs = append(errs, fmt.Sprintf("invalid subnet %s: it should be %s", c.Subnet, c.Subnet.Masked()))
		}
		if r := c.IPRange; r.IsValid() {
			switch {
			case familyOf(r.Addr()) != family:
				errs = append(errs, fmt.Sprintf("invalid ip-range %s: parent subnet is an %s block", r, family))
			default:
				if r.Bits() < c.Subnet.Bits() {
					errs = append(errs, fmt.Sprintf("invalid ip-range %s: CIDR block is bigger than its parent subnet %s", r, c.Subnet))
				}
				if r != r.Masked() {
					errs = append(errs, fmt.Sprintf("invalid ip-range %s: it should be %s", r, r.Masked()))
				}
				if !c.Subnet.Overlaps(r) {
					errs = append(errs, fmt.Sprintf("invalid ip-range %s: parent subnet %s doesn't contain ip-range", r, c.Subnet))
				}
			}
		}
		if c.Gateway.IsValid() {
			if msg := addressFault(c.Gateway, c.Subnet); msg != "" {
				errs = append(errs, fmt.Sprintf("invalid gateway %s: %s", c.Gateway, msg))
			}
		}
		names := make([]string, 0, len(c.AuxAddress))
		for k := range c.AuxAddress {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if msg := addressFault(c.AuxAddress[k], c.Subnet); msg != "" {
				errs = append(errs, fmt.Sprintf("invalid auxiliary address %s: %s", k, msg))
			}
		}
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errdefs.InvalidArgumentf("invalid network config:\n%s", errs[0])
	}
	return errdefs.InvalidArgumentf("invalid network config:\n* %s", strings.Join(errs, "\n* "))
}

func familyOf(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// addressFault says why a cannot be an address of subnet, or "".
func addressFault(a netip.Addr, subnet netip.Prefix) string {
	family := familyOf(subnet.Addr())
	if familyOf(a) != family {
		return "parent subnet is an " + family + " block"
	}
	if !subnet.Contains(a) {
		return fmt.Sprintf("parent subnet %s doesn't contain this address", subnet)
	}
	return ""
}

// pool is the network's IPv4 address pool.
func (n *netRecord) pool() netns.Pool {
	return makePool(n.Subnet, n.IPRange, n.Gateway, n.Aux)
}

// pool6 is the network's IPv6 address pool; ok is false when it has none.
func (n *netRecord) pool6() (p netns.Pool, ok bool) {
	if n.Subnet6 == "" {
		return netns.Pool{}, false
	}
	return makePool(n.Subnet6, n.IPRange6, n.Gateway6, n.Aux6), true
}

func makePool(subnet, ipRange, gateway string, aux map[string]string) netns.Pool {
	p := netns.Pool{}
	p.Subnet, _ = netip.ParsePrefix(subnet)
	p.Range, _ = netip.ParsePrefix(ipRange)
	p.Gateway, _ = netip.ParseAddr(gateway)
	for _, a := range aux {
		if x, err := netip.ParseAddr(a); err == nil {
			p.Aux = append(p.Aux, x)
		}
	}
	return p
}

// ipv6Asked reads EnableIPv6, or the driver option Docker also takes.
func ipv6Asked(req network.CreateRequest) (bool, error) {
	if req.EnableIPv6 != nil {
		return *req.EnableIPv6, nil
	}
	if v, ok := req.Options["com.docker.network.enable_ipv6"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, errdefs.InvalidArgumentf("driver-opt %q is not a valid bool", "com.docker.network.enable_ipv6")
		}
		return b, nil
	}
	return false, nil
}

// addressIPv4 gives r its IPv4 subnet: the one asked for (with its range,
// gateway and auxiliary addresses) or a free one of the default pools.
// Callers hold s.mu.
func (s *Store) addressIPv4(r *netRecord, cfg []network.IPAMConfig) error {
	var used []net.IPNet
	for _, o := range s.nets {
		used = append(used, o.subnet())
	}
	if len(cfg) == 0 {
		sub, err := netns.PickSubnet(used)
		if err != nil {
			return err
		}
		r.Subnet, r.Gateway = sub.String(), netns.FirstHost(sub).String()
		return nil
	}
	c := cfg[0]
	sub, err := netns.ParseSubnet(c.Subnet.String())
	if err != nil {
		return err
	}
	if err := netns.CheckSubnet(sub, used); err != nil {
		return err
	}
	r.Subnet = sub.String()
	return fillPool(c, &r.IPRange, &r.Gateway, &r.Aux)
}

// addressIPv6 gives r its IPv6 subnet: the one asked for, or a /64 of a
// unique local prefix. Callers hold s.mu.
func (s *Store) addressIPv6(r *netRecord, cfg []network.IPAMConfig) error {
	var used []netip.Prefix
	for _, o := range s.nets {
		if p, err := netip.ParsePrefix(o.Subnet6); err == nil {
			used = append(used, p)
		}
	}
	if len(cfg) == 0 {
		for i := 0; ; i++ {
			sub := netns.ULASubnet(r.ID, i)
			if netns.CheckSubnet6(sub, used) == nil {
				r.Subnet6 = sub.String()
				gw, err := (netns.Pool{Subnet: sub}).DefaultGateway()
				r.Gateway6 = gw.String()
				return err
			}
		}
	}
	c := cfg[0]
	if err := netns.CheckSubnet6(c.Subnet, used); err != nil {
		return err
	}
	r.Subnet6 = c.Subnet.String()
	return fillPool(c, &r.IPRange6, &r.Gateway6, &r.Aux6)
}

// fillPool records a subnet's range, gateway and auxiliary addresses; a
// gateway not asked for is the first free address, as in Docker.
func fillPool(c network.IPAMConfig, ipRange, gateway *string, aux *map[string]string) error {
	p := netns.Pool{Subnet: c.Subnet, Range: c.IPRange}
	if c.IPRange.IsValid() {
		*ipRange = c.IPRange.String()
	}
	if len(c.AuxAddress) > 0 {
		*aux = map[string]string{}
		for k, a := range c.AuxAddress {
			(*aux)[k] = a.String()
			p.Aux = append(p.Aux, a)
		}
	}
	if c.Gateway.IsValid() {
		*gateway = c.Gateway.String()
		return nil
	}
	gw, err := p.DefaultGateway()
	if err != nil {
		return err
	}
	*gateway = gw.String()
	return nil
}

// ipamConfig is one pool as inspect shows it.
func ipamConfig(p netns.Pool, aux map[string]string) network.IPAMConfig {
	c := network.IPAMConfig{Subnet: p.Subnet, IPRange: p.Range, Gateway: p.Gateway}
	for k, v := range aux {
		if a, err := netip.ParseAddr(v); err == nil {
			if c.AuxAddress == nil {
				c.AuxAddress = map[string]netip.Addr{}
			}
			c.AuxAddress[k] = a
		}
	}
	return c
}

// lease takes an address for container id on the network ref names (by
// ID, name or unique ID prefix): the ones asked for, else the next free
// ones, IPv6 too on a dual-stack network. The address is the container's
// until release, and the network is not removed while it holds one. A
// container holds one lease per network: a second is a conflict.
func (s *Store) lease(ref, id string, want4, want6 netip.Addr) (lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookup(ref)
	if err != nil {
		return lease{}, err
	}
	held := s.leases[r.ID]
	if _, ok := held[id]; ok {
		return lease{}, errdefs.Conflictf("container %s is already attached to network %s", id[:12], r.Name)
	}
	used := map[netip.Addr]bool{}
	for _, l := range held {
		used[l.addr.Addr()] = true
		if l.addr6.IsValid() {
			used[l.addr6.Addr()] = true
		}
	}
	addr, err := takeAddress(r.pool(), want4, used, r.Name)
	if err != nil {
		return lease{}, err
	}
	ones, _ := r.subnet().Mask.Size()
	l := lease{net: r.info(), addr: netip.PrefixFrom(addr, ones)}
	if p6, ok := r.pool6(); ok {
		a6, err := takeAddress(p6, want6, used, r.Name)
		if err != nil {
			return lease{}, err
		}
		l.addr6, l.gateway6 = netip.PrefixFrom(a6, p6.Subnet.Bits()), r.Gateway6
	} else if want6.IsValid() {
		return lease{}, errdefs.InvalidArgumentf("invalid endpoint settings:\nuser specified IP address is supported only when connecting to networks with user configured subnets")
	}
	if held == nil {
		held = map[string]lease{}
		s.leases[r.ID] = held
	}
	held[id] = l
	return l, nil
}

// release gives back container id's address on a network. It is
// idempotent.
func (s *Store) release(networkID, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.leases[networkID], id)
	if len(s.leases[networkID]) == 0 {
		delete(s.leases, networkID)
	}
}

// leasesOf are the leases the sandboxes' endpoints hold, as the store
// starts with them.
func leasesOf(sbs map[string]*sandbox) map[string]map[string]lease {
	out := map[string]map[string]lease{}
	for _, sb := range sbs {
		for _, e := range sb.Endpoints {
			var l lease
			if a, err := netip.ParseAddr(e.IP); err == nil {
				l.addr = netip.PrefixFrom(a, e.PrefixLen)
			}
			if a6, err := netip.ParseAddr(e.IP6); err == nil {
				l.addr6 = netip.PrefixFrom(a6, e.PrefixLen6)
			}
			if out[e.NetworkID] == nil {
				out[e.NetworkID] = map[string]lease{}
			}
			out[e.NetworkID][sb.ContainerID] = l
		}
	}
	return out
}

// takeAddress is the address a container gets from p: the one it asks
// for (anywhere in the subnet, as in Docker, but not a reserved or taken
// one) or the next free one.
func takeAddress(p netns.Pool, want netip.Addr, used map[netip.Addr]bool, network string) (netip.Addr, error) {
	if !want.IsValid() {
		return p.Next(used)
	}
	if p.Reserved(want) || used[want] {
		return netip.Addr{}, errdefs.InvalidArgumentf("address %s is not available on network %s", want, network)
	}
	return want, nil
}

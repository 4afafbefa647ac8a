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
// Callers hold n.mu.
func (n *Networks) addressIPv4(r *netRecord, cfg []network.IPAMConfig) error {
	var used []net.IPNet
	for _, o := range n.nets {
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
// unique local prefix. Callers hold n.mu.
func (n *Networks) addressIPv6(r *netRecord, cfg []network.IPAMConfig) error {
	var used []netip.Prefix
	for _, o := range n.nets {
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

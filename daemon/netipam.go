package daemon

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/errdefs"
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

package netns

import (
	"crypto/sha256"
	"net/netip"

	"github.com/lodge-containers/lodge/errdefs"
)

// Pool is one subnet of a network (IPv4 or IPv6) and the rules for giving
// its addresses to containers, as Docker's default IPAM keeps them: the
// gateway and the auxiliary addresses (--aux-address) are never given,
// dynamic addresses come from Range (--ip-range) when it is set, an IPv4
// subnet's network and broadcast addresses are reserved except in a /31
// point-to-point link (RFC 3021), and an IPv6 subnet's first address is
// the Subnet-Router anycast one (RFC 4291). A Pool is a value: the caller
// keeps which addresses are in use.
type Pool struct {
	Subnet  netip.Prefix
	Range   netip.Prefix // zero: the whole subnet
	Gateway netip.Addr
	Aux     []netip.Addr
}

// Reserved tells whether a is one of the addresses no container may have:
// outside the subnet, the gateway, an auxiliary address, or the subnet's
// network, anycast or broadcast address.
func (p Pool) Reserved(a netip.Addr) bool {
	if !p.Subnet.Contains(a) || a == p.Gateway {
		return true
	}
	for _, x := range p.Aux {
		if a == x {
			return true
		}
	}
	host := a.BitLen() - p.Subnet.Bits()
	if a == p.Subnet.Masked().Addr() && (a.Is6() || host > 1) {
		return true
	}
	return a.Is4() && host > 1 && a == lastAddr(p.Subnet)
}

// Next returns the first address of Range (or of Subnet) that is neither
// reserved nor in used. It fails with an Unavailable error when none is
// left.
func (p Pool) Next(used map[netip.Addr]bool) (netip.Addr, error) {
	r := p.Range
	if !r.IsValid() {
		r = p.Subnet
	}
	r = r.Masked()
	// An IPv6 /64 has more addresses than can ever be in use: the walk
	// ends at the first free one, long before the end of such a range.
	for a := r.Addr(); r.Contains(a); a = a.Next() {
		if !p.Reserved(a) && !used[a] {
			return a, nil
		}
		if a == lastAddr(r) {
			break
		}
	}
	family := "IPv4"
	if r.Addr().Is6() {
		family = "IPv6"
	}
	return netip.Addr{}, errdefs.Unavailablef("no available %s addresses on this network's address pools: %s", family, p.Subnet)
}

// DefaultGateway is the address Docker gives a network's gateway when none
// is asked for: the first one of Range (or Subnet) not otherwise reserved.
func (p Pool) DefaultGateway() (netip.Addr, error) {
	p.Gateway = netip.Addr{}
	return p.Next(nil)
}

// lastAddr is the highest address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// ULASubnet is a /64 of an IPv6 unique local prefix (fd00::/8, RFC 4193)
// derived from seed, for a network asked to carry IPv6 without a subnet
// of its own. attempt picks another one when the first is taken.
func ULASubnet(seed string, attempt int) netip.Prefix {
	h := sha256.Sum256([]byte{byte(attempt)})
	h = sha256.Sum256(append(h[:], seed...))
	var b [16]byte
	b[0] = 0xfd
	copy(b[1:8], h[:7])
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// CheckSubnet6 refuses an IPv6 subnet that overlaps one in use.
func CheckSubnet6(s netip.Prefix, used []netip.Prefix) error {
	if !s.Addr().Is6() || s.Bits() > 127 {
		return errdefs.InvalidArgumentf("invalid subnet %s: an IPv6 subnet of /127 or larger is needed", s)
	}
	for _, u := range used {
		if u.Overlaps(s) {
			return errdefs.Conflictf("Pool overlaps with other one on this address space (%s and %s)", s, u)
		}
	}
	return nil
}

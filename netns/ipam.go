package netns

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/lodge-containers/lodge/errdefs"
)

// IPAM here is host-local style and stateless: the caller keeps which
// addresses are in use (lodged persists them under its data root) and
// these functions choose the next.

// NextFree returns the first address of subnet that is not the network or
// broadcast address, not the gateway and not in used (keyed by
// IP.String()).
func NextFree(subnet net.IPNet, gateway net.IP, used map[string]bool) (net.IP, error) {
	base := subnet.IP.Mask(subnet.Mask).To4()
	ones, bits := subnet.Mask.Size()
	if base == nil || bits != 32 {
		return nil, errdefs.InvalidArgumentf("subnet %s is not IPv4", subnet.String())
	}
	size := uint32(1) << (32 - ones)
	start := binary.BigEndian.Uint32(base)
	first, end := uint32(1), size-1
	if ones >= 31 {
		first, end = 0, size // RFC 3021: no network or broadcast address
	}
	for i := first; i < end; i++ {
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, start+i)
		if ip.Equal(gateway) || used[ip.String()] {
			continue
		}
		return ip, nil
	}
	return nil, errdefs.Unavailablef("no available IPv4 addresses on this network's address pools: %s", subnet.String())
}

// FirstHost is the subnet's first usable address: the default gateway.
// In a /31 that is the subnet's own first address (RFC 3021).
func FirstHost(subnet net.IPNet) net.IP {
	ip := make(net.IP, 4)
	off := uint32(1)
	if ones, _ := subnet.Mask.Size(); ones >= 31 {
		off = 0
	}
	binary.BigEndian.PutUint32(ip, binary.BigEndian.Uint32(subnet.IP.Mask(subnet.Mask).To4())+off)
	return ip
}

// Overlaps reports whether two subnets share an address.
func Overlaps(a, b net.IPNet) bool { return a.Contains(b.IP) || b.Contains(a.IP) }

// reserved are subnets a bridge network must never take: the uplink's.
var reserved = []string{UplinkCIDR}

// PickSubnet chooses a free subnet for a new network, as Docker's default
// pools do: 172.17-31.0.0/16, then 192.168.0-240.0/20.
func PickSubnet(used []net.IPNet) (net.IPNet, error) {
	var candidates []net.IPNet
	for i := 17; i <= 31; i++ {
		candidates = append(candidates, net.IPNet{IP: net.IPv4(172, byte(i), 0, 0).To4(), Mask: net.CIDRMask(16, 32)})
	}
	for i := 0; i < 256; i += 16 {
		candidates = append(candidates, net.IPNet{IP: net.IPv4(192, 168, byte(i), 0).To4(), Mask: net.CIDRMask(20, 32)})
	}
next:
	for _, c := range candidates {
		if err := CheckSubnet(c, used); err != nil {
			continue next
		}
		return c, nil
	}
	return net.IPNet{}, errdefs.Unavailablef("all predefined address pools have been fully subnetted")
}

// CheckSubnet refuses a subnet that overlaps one in use or the uplink's.
func CheckSubnet(s net.IPNet, used []net.IPNet) error {
	// A /31 is a point-to-point link (RFC 3021): the gateway and one
	// container, no network or broadcast address.
	if ones, bits := s.Mask.Size(); bits != 32 || ones > 31 {
		return errdefs.InvalidArgumentf("invalid subnet %s: an IPv4 subnet of /31 or larger is needed", s.String())
	}
	for _, r := range reserved {
		_, rn, _ := net.ParseCIDR(r)
		if Overlaps(s, *rn) {
			return errdefs.Conflictf("subnet %s overlaps with the uplink's %s", s.String(), r)
		}
	}
	for _, u := range used {
		if Overlaps(s, u) {
			return errdefs.Conflictf("Pool overlaps with other one on this address space (%s and %s)", s.String(), u.String())
		}
	}
	return nil
}

// ParseSubnet reads a CIDR, keeping only the network part.
func ParseSubnet(s string) (net.IPNet, error) {
	_, n, err := net.ParseCIDR(s)
	if err != nil || n.IP.To4() == nil {
		return net.IPNet{}, errdefs.InvalidArgumentf("invalid subnet %q: %s", s, fmt.Sprint(err))
	}
	n.IP = n.IP.To4()
	return *n, nil
}

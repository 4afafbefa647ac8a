package netns

import (
	"fmt"
	"net"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// NAT and isolation are nftables rules in the uplink namespace, written
// over netlink in-process (github.com/google/nftables): no iptables or nft
// binary has to be installed, and the namespace belongs to lodged's user
// namespace, where root may change its rules without any privilege on the
// host.

// tableName is lodge's nftables table in the uplink namespace; lodge owns
// it whole and rewrites it on every change.
const tableName = "lodge"

// BridgePrefix starts every bridge's name, so that isolation rules can
// name "any other lodge bridge".
const BridgePrefix = "lodge"

// RoutedNet is one bridge network as the rules see it.
type RoutedNet struct {
	Bridge string
	Subnet net.IPNet
	// Internal networks reach nothing beyond their bridge (docker network
	// create --internal).
	Internal bool
}

// ApplyRules replaces lodge's table with rules for nets: traffic from each
// subnet leaving by any other link than its own bridge is masqueraded
// (outbound through the uplink), and traffic from one lodge bridge to
// another is dropped, as Docker isolates its networks; an internal
// network's traffic stays on its bridge. The change is one
// atomic batch.
func (f *Fabric) ApplyRules(nets []RoutedNet) error {
	return Do(f.UplinkNS, func() error { return applyRules(nets) })
}

func applyRules(nets []RoutedNet) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	t := &nftables.Table{Name: tableName, Family: nftables.TableFamilyIPv4}
	c.AddTable(t) // so that the delete below finds one
	c.DelTable(t)
	t = c.AddTable(&nftables.Table{Name: tableName, Family: nftables.TableFamilyIPv4})
	accept := nftables.ChainPolicyAccept
	post := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	fwd := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	for _, n := range nets {
		ip := n.Subnet.IP.To4()
		if ip == nil || len(n.Subnet.Mask) != 4 {
			return fmt.Errorf("subnet %s is not IPv4", n.Subnet.String())
		}
		if n.Internal {
			c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: []expr.Any{
				&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(n.Bridge)},
				&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
				&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(n.Bridge)},
				&expr.Verdict{Kind: expr.VerdictDrop},
			}})
			continue
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: n.Subnet.Mask, Xor: []byte{0, 0, 0, 0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip.Mask(n.Subnet.Mask)},
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(n.Bridge)},
			&expr.Masq{},
		}})
		c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(n.Bridge)},
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(BridgePrefix)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(n.Bridge)},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}})
	}
	isolate6(c, nets)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables rules in lodged's network namespace: %w", err)
	}
	return nil
}

// isolate6 adds the same isolation for IPv6 (dual-stack networks) in a
// table of its own: a packet routed from one lodge bridge to another, or
// out of an internal network's bridge, is dropped. IPv6 is not
// masqueraded: the uplink drivers carry IPv4 only, so IPv6 stays between
// the containers of a network.
func isolate6(c *nftables.Conn, nets []RoutedNet) {
	t := &nftables.Table{Name: tableName, Family: nftables.TableFamilyIPv6}
	c.AddTable(t)
	c.DelTable(t)
	t = c.AddTable(&nftables.Table{Name: tableName, Family: nftables.TableFamilyIPv6})
	accept := nftables.ChainPolicyAccept
	fwd := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	for _, n := range nets {
		out := []expr.Any{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}}
		if !n.Internal {
			out = append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(BridgePrefix)})
		}
		out = append(out, &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(n.Bridge)}, &expr.Verdict{Kind: expr.VerdictDrop})
		c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: append([]expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(n.Bridge)},
		}, out...)})
	}
}

// ifname is an interface name as nftables compares it: NUL-terminated.
func ifname(s string) []byte { return append([]byte(s), 0) }

package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/netns"
)

// Validate checks at create time that a container's port bindings parse.
// The networks it names are looked up when it starts, as Docker does (the
// docker CLI takes a 404 from create for a missing image and pulls).
func (n *Networks) Validate(hc *container.HostConfig, nc *network.NetworkingConfig) error {
	if !IsBridgeMode(string(hc.NetworkMode)) {
		return nil // Docker ignores port bindings there; so does lodge
	}
	if nc != nil {
		for name, es := range nc.EndpointsConfig {
			if es == nil || name != network.NetworkBridge && name != network.NetworkDefault {
				continue
			}
			if len(es.Aliases) > 0 {
				return errdefs.InvalidArgumentf("network-scoped alias is supported only for containers in user defined networks")
			}
			if es.IPAMConfig != nil && es.IPAMConfig.IPv4Address.IsValid() {
				return errdefs.InvalidArgumentf("user specified IP address is supported on user defined networks only")
			}
		}
	}
	for p, bs := range hc.PortBindings {
		if p.Num() == 0 {
			return errdefs.InvalidArgumentf("invalid port %s", p)
		}
		if p.Proto() != network.TCP && p.Proto() != network.UDP {
			return errdefs.InvalidArgumentf("invalid proto %q in port %s: lodge publishes tcp and udp", p.Proto(), p)
		}
		for _, b := range bs {
			if _, _, err := hostPortRange(b.HostPort); err != nil {
				return err
			}
		}
	}
	return nil
}

// hostPortRange reads a binding's host port: "" or "0" (any free one, as
// compose and testcontainers ask for an ephemeral port), "8080" or
// "8000-8010" (the first free one of them).
func hostPortRange(s string) (lo, hi int, err error) {
	if s == "" || s == "0" {
		return 0, 0, nil
	}
	a, b, isRange := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi = lo
	var err2 error
	if isRange {
		hi, err2 = strconv.Atoi(b)
	}
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || hi < lo {
		return 0, 0, errdefs.InvalidArgumentf("invalid host port %q", s)
	}
	return lo, hi, nil
}

// sandboxFor returns a running container's sandbox, or nil.
func (n *Networks) sandboxFor(id string) *sandbox {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sandboxes[id]
}

// NSPath is the pinned namespace of a running bridge-mode container, ""
// when it has none.
func (n *Networks) NSPath(id string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if sb := n.sandboxes[id]; sb != nil {
		return sb.NSPath
	}
	return ""
}

// PrimaryIP is the address of a running container on its first network
// (what a legacy link's variables name), "" when it has none.
func (n *Networks) PrimaryIP(id string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if sb := n.sandboxes[id]; sb != nil && len(sb.Endpoints) > 0 {
		return sb.Endpoints[0].IP
	}
	return ""
}

// hostIf names the veth end in lodged's namespace: stable per container
// and network, so a leftover from a crash is found and replaced.
func hostIf(containerID, networkID string) string {
	h := sha256.Sum256([]byte(containerID + networkID))
	return "veth" + hex.EncodeToString(h[:])[:11]
}

// Attach gives a starting container its network: a pinned namespace, one
// link and address per configured network, and its published ports. It
// returns the namespace's path, or "" when the container's mode is not a
// bridge one. On error nothing is left behind.
func (n *Networks) Attach(ctx context.Context, sp Spec) (nsPath string, err error) {
	names := sp.networks()
	if len(names) == 0 {
		return "", nil
	}
	if n.Fabric == nil {
		return "", errdefs.Unavailablef("lodged has no network namespace for bridge networks: run the container with --network none or host")
	}
	n.Detach(ctx, sp.ID) // whatever a crash left
	nsPath = filepath.Join(n.RunDir, "netns", sp.ID)
	if err := n.Namespaces.Pin(nsPath); err != nil {
		return "", err
	}
	sb := &sandbox{ContainerID: sp.ID, NSPath: nsPath, Name: sp.Name, Hostname: sp.Hostname, Links: sp.Links}
	defer func() {
		if err != nil {
			n.teardown(ctx, sb)
		}
	}()
	for i, name := range names {
		if err := n.join(sb, name, sp.endpointConfig(name), i == 0); err != nil {
			return "", err
		}
	}
	if err := n.publish(ctx, sp, sb); err != nil {
		return "", err
	}
	return nsPath, nil
}

// join allocates an address on the named network, records it and wires
// the link. The first network gives the default route. The address is
// taken (and persisted) before the link exists, so a concurrent start
// cannot take it too.
func (n *Networks) join(sb *sandbox, name string, es *network.EndpointSettings, primary bool) error {
	n.mu.Lock()
	r, err := n.lookup(name)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	for _, e := range sb.Endpoints {
		if e.NetworkID == r.ID {
			n.mu.Unlock()
			return errdefs.Conflictf("container %s is already attached to network %s", sb.ContainerID[:12], r.Name)
		}
	}
	sub := r.subnet()
	gw := net.ParseIP(r.Gateway).To4()
	used := map[netip.Addr]bool{}
	for _, other := range n.sandboxes {
		for _, e := range other.Endpoints {
			if e.NetworkID == r.ID {
				for _, s := range []string{e.IP, e.IP6} {
					if a, err := netip.ParseAddr(s); err == nil {
						used[a] = true
					}
				}
			}
		}
	}
	var want4, want6 netip.Addr
	if es != nil && es.IPAMConfig != nil {
		want4, want6 = es.IPAMConfig.IPv4Address, es.IPAMConfig.IPv6Address
	}
	addr, err := takeAddress(r.pool(), want4, used, r.Name)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	ip := net.IP(addr.AsSlice())
	ones, _ := sub.Mask.Size()
	mac := net.HardwareAddr{0x02, 0x42, ip[0], ip[1], ip[2], ip[3]}
	if es != nil && len(es.MacAddress) == 6 {
		mac = net.HardwareAddr(es.MacAddress) // --mac-address
	}
	e := endpoint{NetworkID: r.ID, EndpointID: newID(), IP: ip.String(), PrefixLen: ones, Gateway: r.Gateway,
		MAC: mac.String(), HostIf: hostIf(sb.ContainerID, r.ID)}
	var addr6 net.IPNet
	var gw6 net.IP
	if p6, ok := r.pool6(); ok {
		a6, err := takeAddress(p6, want6, used, r.Name)
		if err != nil {
			n.mu.Unlock()
			return err
		}
		e.IP6, e.PrefixLen6, e.Gateway6 = a6.String(), p6.Subnet.Bits(), r.Gateway6
		addr6 = net.IPNet{IP: net.IP(a6.AsSlice()), Mask: net.CIDRMask(p6.Subnet.Bits(), 128)}
		gw6 = net.IP(p6.Gateway.AsSlice())
	} else if want6.IsValid() {
		n.mu.Unlock()
		return errdefs.InvalidArgumentf("invalid endpoint settings:\nuser specified IP address is supported only when connecting to networks with user configured subnets")
	}
	if es != nil && !r.Builtin {
		e.Aliases = es.Aliases
	}
	bridge, ifName := r.Bridge, "eth"+strconv.Itoa(len(sb.Endpoints))
	sb.Endpoints = append(sb.Endpoints, e)
	n.sandboxes[sb.ContainerID] = sb
	err = n.saveSandbox(sb.ContainerID, sb)
	n.mu.Unlock()
	if err != nil {
		return err
	}
	if err := n.Fabric.Attach(netns.Endpoint{Bridge: bridge, HostIf: e.HostIf, NSPath: sb.NSPath,
		IfName: ifName, Addr: net.IPNet{IP: ip, Mask: sub.Mask}, Gateway: gw, MAC: mac, DefaultRoute: primary,
		Addr6: addr6, Gateway6: gw6}); err != nil {
		return err
	}
	n.emit(events.ActionConnect, r, sb.ContainerID)
	return nil
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

// publish forwards the container's published ports to its first
// address, choosing host ports where none is given.
func (n *Networks) publish(ctx context.Context, sp Spec, sb *sandbox) error {
	bindings := sp.PortBindings
	if sp.PublishAll {
		all := network.PortMap{}
		for p, bs := range bindings {
			all[p] = bs
		}
		for p := range sp.ExposedPorts {
			if _, ok := all[p]; !ok {
				all[p] = []network.PortBinding{{}}
			}
		}
		bindings = all
	}
	if len(bindings) == 0 {
		return nil
	}
	if n.Ports == nil {
		return errdefs.Unavailablef("lodged has no port driver: cannot publish ports")
	}
	ports := make([]network.Port, 0, len(bindings))
	for p := range bindings {
		ports = append(ports, p)
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].String() < ports[j].String() })
	for _, p := range ports {
		for _, b := range bindings[p] {
			f := netns.Forward{Proto: string(p.Proto()), ChildIP: sb.Endpoints[0].IP, Port: int(p.Num())}
			if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
				f.HostIP = b.HostIP.String()
			} else if b.HostIP.IsValid() && b.HostIP.Is4() {
				f.HostIP = "0.0.0.0"
			}
			lo, hi, err := hostPortRange(b.HostPort)
			if err != nil {
				return err
			}
			if err := n.publishOne(ctx, sb, f, lo, hi); err != nil {
				return err
			}
		}
	}
	return nil
}

// publishOne publishes f on a host port in [lo, hi], or a free one when
// lo is 0, and records it.
func (n *Networks) publishOne(ctx context.Context, sb *sandbox, f netns.Forward, lo, hi int) error {
	if lo == 0 {
		hp, err := netns.FreePort(f.Proto, f.HostIP)
		if err != nil {
			return err
		}
		lo, hi = hp, hp
	}
	var err error
	for hp := lo; hp <= hi; hp++ {
		f.HostPort = hp
		if err = n.Ports.Publish(ctx, f); err == nil {
			break
		}
		if !errors.Is(err, errdefs.ErrConflict) {
			return err
		}
	}
	if err != nil {
		return err
	}
	n.mu.Lock()
	sb.Ports = append(sb.Ports, f)
	werr := n.saveSandbox(sb.ContainerID, sb)
	n.mu.Unlock()
	return werr
}

// Detach undoes Attach for a container that has stopped: ports, links,
// addresses and the pinned namespace. It is idempotent.
func (n *Networks) Detach(ctx context.Context, id string) {
	n.mu.Lock()
	sb := n.sandboxes[id]
	n.mu.Unlock()
	if sb != nil {
		n.teardown(ctx, sb)
	}
}

func (n *Networks) teardown(ctx context.Context, sb *sandbox) {
	if n.Ports != nil && len(sb.Ports) > 0 {
		if err := n.Ports.Unpublish(ctx, sb.Ports); err != nil {
			n.Log.Warn("unpublishing ports", "container", sb.ContainerID, "err", err)
		}
	}
	// The links go with the namespace, which the kernel tears down in
	// the background once unpinned: deleting a veth here would wait for
	// the kernel's network-wide synchronisation on every stop. A link
	// left from it is replaced when the name comes back (Fabric.Attach).
	if err := n.Namespaces.Unpin(sb.NSPath); err != nil {
		n.Log.Warn("network namespace", "container", sb.ContainerID, "err", err)
	}
	n.mu.Lock()
	delete(n.sandboxes, sb.ContainerID)
	if err := os.Remove(n.sandboxPath(sb.ContainerID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Left, it would hold the addresses at the next start of lodged.
		n.Log.Warn("removing a sandbox record", "container", sb.ContainerID, "err", err)
	}
	var left []*netRecord
	for _, e := range sb.Endpoints {
		if r := n.nets[e.NetworkID]; r != nil {
			left = append(left, r)
		}
	}
	n.mu.Unlock()
	for _, r := range left {
		n.emit(events.ActionDisconnect, r, sb.ContainerID)
	}
}

// Readopt restores what a running container published, after a restart
// of lodged (the port driver keeps its forwards unless the namespace was
// rebuilt).
func (n *Networks) Readopt(ctx context.Context, id string) {
	sb := n.sandboxFor(id)
	if sb == nil || n.Ports == nil || len(sb.Ports) == 0 {
		return
	}
	if err := n.Ports.Ensure(ctx, sb.Ports); err != nil {
		n.Log.Warn("restoring published ports", "container", id, "err", err)
	}
}

// Republish restores every running container's published ports, after
// the port driver was started anew (lodged's host side died and the
// keeper took its work over, with no forwards). It returns what failed,
// for the caller to try again.
func (n *Networks) Republish(ctx context.Context) error {
	n.mu.Lock()
	var sbs []*sandbox
	for _, sb := range n.sandboxes {
		sbs = append(sbs, sb)
	}
	n.mu.Unlock()
	if n.Ports == nil {
		return nil
	}
	var errs []error
	for _, sb := range sbs {
		if len(sb.Ports) > 0 {
			if err := n.Ports.Ensure(ctx, sb.Ports); err != nil {
				errs = append(errs, fmt.Errorf("container %s: %w", sb.ContainerID, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Settings is the NetworkSettings of a container's inspect: the
// operational data while it runs, its configuration otherwise. What it
// returns shares nothing with the service's state or with sp.
func (n *Networks) Settings(sp Spec) *container.NetworkSettings {
	ns := &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{}, Ports: network.PortMap{}}
	for p := range sp.ExposedPorts {
		ns.Ports[p] = nil
	}
	for p := range sp.PortBindings {
		ns.Ports[p] = nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	sb := n.sandboxes[sp.ID]
	for _, name := range sp.networks() {
		es := &network.EndpointSettings{}
		if cfg := sp.endpointConfig(name); cfg != nil {
			es = cfg.Copy()
		}
		key := name
		if r, err := n.lookup(name); err == nil {
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
func (n *Networks) Etc(id string) Etc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return Etc{Hosts: n.hostsLocked(id), Nameserver: n.nameserverLocked(id), HostGateway: n.HostLoopback, UplinkDNS: n.UplinkDNS}
}

// hostsLocked is the /etc/hosts lines for a running container's own
// addresses, and for the running containers its links name. Callers hold
// n.mu.
func (n *Networks) hostsLocked(id string) string {
	sb := n.sandboxes[id]
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
		if osb := n.runningLocked(name); osb != nil && len(osb.Endpoints) > 0 {
			fmt.Fprintf(&b, "%s\t%s\n", osb.Endpoints[0].IP, strings.TrimSpace(alias+" "+name))
		}
	}
	return b.String()
}

// runningLocked is the sandbox of the running container ref names (its
// name, ID or a unique ID prefix of 12 or more), nil for none. Callers
// hold n.mu.
func (n *Networks) runningLocked(ref string) *sandbox {
	if sb := n.sandboxes[ref]; sb != nil {
		return sb
	}
	var found *sandbox
	for _, sb := range n.sandboxes {
		if sb.Name == ref {
			return sb
		}
		if len(ref) >= 12 && strings.HasPrefix(sb.ContainerID, ref) {
			found = sb
		}
	}
	return found
}

// nameserverLocked is the name server of a running container's first
// user-defined network (its gateway), or "" when it has none. Callers
// hold n.mu.
func (n *Networks) nameserverLocked(id string) string {
	sb := n.sandboxes[id]
	if n.Resolver == nil || sb == nil {
		return ""
	}
	for _, e := range sb.Endpoints {
		if r := n.nets[e.NetworkID]; r != nil && !r.Builtin {
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
func (n *Networks) resolve(gateway, client net.IP, name string) []net.IP {
	n.mu.Lock()
	defer n.mu.Unlock()
	var netID string
	for _, r := range n.nets {
		if r.Gateway == gateway.String() {
			netID = r.ID
		}
	}
	// A link (--link other:alias) is a name only its container sees.
	target := ""
	if client != nil {
		for _, sb := range n.sandboxes {
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
			if sb := n.runningLocked(target); sb != nil {
				target = sb.ContainerID
			}
		}
	}
	var out []net.IP
	for _, sb := range n.sandboxes {
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

// saveSandbox writes a sandbox's record. Callers hold n.mu. It is not
// synced to disk: a sandbox means nothing after the machine restarts, and
// a crash of lodged alone leaves the page cache intact.
func (n *Networks) saveSandbox(id string, sb *sandbox) error {
	b, err := json.Marshal(sb)
	if err != nil {
		return err
	}
	path := n.sandboxPath(id)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

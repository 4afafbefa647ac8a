package netns

import (
	"errors"
	"fmt"
	"net"
	"os"
	goruntime "runtime"
	"sync"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Fabric wires bridges and container links inside the namespace that holds
// the uplink (lodged's detached network namespace). Its methods are safe
// for concurrent use. It keeps one netlink socket in that namespace, opened
// at the first link a container gets and held until Close.
type Fabric struct {
	// UplinkNS is the path of the namespace the bridges live in.
	UplinkNS string

	mu  sync.Mutex
	up  *netlink.Handle // route socket in UplinkNS; nil until first used
	mtu int             // the uplink's MTU, 0 until its default route is seen
}

// uplink returns the route socket in the uplink namespace and the MTU the
// links take, opening the socket at the first call. A netlink socket stays
// in the namespace it was made in, so one made once serves every later
// call from any thread: a container's start then enters that namespace
// neither to make its veth nor to look the MTU up again. The MTU is kept
// once a default route gives it (the uplink's MTU does not change while
// the namespace lives; before the uplink is up, 1500 is used and not kept).
func (f *Fabric) uplink() (*netlink.Handle, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.up == nil {
		err := Do(f.UplinkNS, func() (err error) {
			f.up, err = netlink.NewHandle(unix.NETLINK_ROUTE)
			return err
		})
		if err != nil {
			return nil, 0, fmt.Errorf("netlink in the uplink namespace: %w", err)
		}
	}
	if f.mtu > 0 {
		return f.up, f.mtu, nil
	}
	mtu, ok := defaultRouteMTU(f.up)
	if ok {
		f.mtu = mtu
	}
	return f.up, mtu, nil
}

// Close releases the socket the Fabric keeps in the uplink namespace. The
// Fabric opens a new one if it is used again.
func (f *Fabric) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.up != nil {
		f.up.Close()
		f.up, f.mtu = nil, 0
	}
}

// Bridge is one Linux bridge and the gateway address it carries.
type Bridge struct {
	Name    string    // at most 15 bytes
	Gateway net.IPNet // the bridge's own address, with the subnet's mask
	// Gateway6 is its IPv6 address on a dual-stack network; zero for none.
	Gateway6 net.IPNet
}

// Endpoint is one container's link to a bridge: a veth pair whose host
// end (HostIf) is enslaved to the bridge and whose other end is IfName in
// the container's namespace at NSPath.
type Endpoint struct {
	Bridge  string
	HostIf  string
	NSPath  string
	IfName  string
	Addr    net.IPNet
	Gateway net.IP // default route; nil for none
	MAC     net.HardwareAddr
	// DefaultRoute is true for the container's first network only.
	DefaultRoute bool
	// Addr6 and Gateway6 are the IPv6 address and gateway on a dual-stack
	// network; zero and nil otherwise.
	Addr6    net.IPNet
	Gateway6 net.IP
}

// in runs fn with a netlink handle on a thread inside the namespace at
// path. The thread enters the namespace and is discarded afterwards:
// lodged runs in the host's network namespace, which its user namespace
// does not own, so a thread could never go back to it (vishvananda/netlink
// and google/nftables both try to, and ignore or fail on the error).
func in(path string, fn func(h *netlink.Handle) error) error {
	return Do(path, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		return fn(h)
	})
}

// Do runs fn on a thread inside the network namespace at path, and
// discards the thread afterwards (see in). Sockets fn opens stay in that
// namespace for their life.
func Do(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread() // never unlocked: the thread ends with the goroutine
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("network namespace %s: %w", path, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("entering network namespace %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// uplinkMTU is the MTU of the link the default route leaves by: the
// bridges and veths take it, since a larger MTU multiplies throughput
// through user-mode drivers. A veth takes it from here, not from its
// bridge: a bridge without ports falls back to 1500.
func uplinkMTU(h *netlink.Handle) int {
	mtu, _ := defaultRouteMTU(h)
	return mtu
}

// defaultRouteMTU is uplinkMTU, and whether a default route gave it.
func defaultRouteMTU(h *netlink.Handle) (int, bool) {
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err == nil {
		for _, r := range routes {
			if r.Dst == nil || r.Dst.IP.IsUnspecified() {
				if l, err := h.LinkByIndex(r.LinkIndex); err == nil && l.Attrs().MTU > 0 {
					return l.Attrs().MTU, true
				}
			}
		}
	}
	return 1500, false
}

// EnsureBridge creates the bridge with its address and brings it up, or
// leaves an existing one as it is. It also turns on forwarding in the
// namespace.
func (f *Fabric) EnsureBridge(b Bridge) error {
	return in(f.UplinkNS, func(h *netlink.Handle) error {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
			return err
		}
		if b.Gateway6.IP != nil {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", []byte("1"), 0o644); err != nil {
				return fmt.Errorf("IPv6 forwarding: %w", err)
			}
		}
		return ensureBridge(h, b)
	})
}

func ensureBridge(h *netlink.Handle, b Bridge) error {
	// Loopback carries what the namespace sends to its own addresses,
	// such as a query to the name server on a gateway.
	if lo, err := h.LinkByName("lo"); err == nil {
		if err := h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("loopback up: %w", err)
		}
	}
	l, err := h.LinkByName(b.Name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return err
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: b.Name, MTU: uplinkMTU(h)}}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("creating bridge %s: %w", b.Name, err)
		}
		if l, err = h.LinkByName(b.Name); err != nil {
			return err
		}
	}
	for _, gw := range []net.IPNet{b.Gateway, b.Gateway6} {
		if gw.IP == nil {
			continue
		}
		if err := ensureAddr(h, l, gw); err != nil {
			return fmt.Errorf("address of bridge %s: %w", b.Name, err)
		}
	}
	return h.LinkSetUp(l)
}

// ensureAddr gives link l the address a unless it has it. An IPv6 address
// skips duplicate address detection: nothing else on a fresh bridge or
// veth can hold it, and a tentative address would not answer for a second
// or two.
func ensureAddr(h *netlink.Handle, l netlink.Link, a net.IPNet) error {
	family := netlink.FAMILY_V4
	if a.IP.To4() == nil {
		family = netlink.FAMILY_V6
	}
	addrs, err := h.AddrList(l, family)
	if err != nil {
		return err
	}
	for _, have := range addrs {
		if have.IPNet.String() == a.String() {
			return nil
		}
	}
	addr := &netlink.Addr{IPNet: &a}
	if family == netlink.FAMILY_V6 {
		addr.Flags = unix.IFA_F_NODAD
	}
	return h.AddrAdd(l, addr)
}

// DeleteBridge removes a bridge; a missing one is not an error.
func (f *Fabric) DeleteBridge(name string) error {
	return in(f.UplinkNS, func(h *netlink.Handle) error {
		l, err := h.LinkByName(name)
		if err != nil {
			return nil
		}
		return h.LinkDel(l)
	})
}

// Attach creates the endpoint's veth pair and configures the container's
// end: address, loopback up, default route. A host end of the same name
// left from an earlier run is replaced.
//
// It runs on one thread that enters the container's namespace and is
// discarded afterwards; the host end is made and enslaved through the
// socket the Fabric keeps in the uplink namespace, already up and with its
// bridge, so a start costs one namespace entry and a dozen netlink round
// trips.
func (f *Fabric) Attach(e Endpoint) error {
	// The peer is made under a temporary name: the container's namespace
	// may already have an eth0 only once it is renamed there.
	peer := "tmp" + e.HostIf[min(3, len(e.HostIf)):]
	return f.link(e, peer, true)
}

// Prepare does the part of Attach that needs no address: the veth pair,
// its host end up on e.Bridge, its container end named e.IfName (down, no
// address; the namespace must not have that name) and the namespace's
// loopback up. Configure finishes it. lodged keeps a few namespaces
// prepared so that a start only configures one. On error nothing is left
// in the uplink namespace.
func (f *Fabric) Prepare(e Endpoint) error {
	return f.link(e, e.IfName, false)
}

// Configure gives the container's end of an endpoint Prepare made its
// MAC, address and routes and brings it up.
func (f *Fabric) Configure(e Endpoint) error {
	up, _, err := f.uplink()
	if err != nil {
		return err
	}
	br, err := up.LinkByName(e.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", e.Bridge, err)
	}
	forgetNeighbours(up, br, e)
	return Do(e.NSPath, func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		return configureInside(h, e, e.IfName, true)
	})
}

// link makes e's veth pair, its container end named peer, and with
// configure set configures that end as e says (Attach), else only raises
// the namespace's loopback (Prepare). On error the pair is removed.
func (f *Fabric) link(e Endpoint, peer string, configure bool) error {
	up, mtu, err := f.uplink()
	if err != nil {
		return err
	}
	br, err := up.LinkByName(e.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", e.Bridge, err)
	}
	err = Do(e.NSPath, func() error {
		self, err := vnetns.Get()
		if err != nil {
			return fmt.Errorf("container's network namespace: %w", err)
		}
		defer func() { _ = self.Close() }() // a namespace handle: an fd only read through
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: e.HostIf, MTU: mtu, MasterIndex: br.Attrs().Index, Flags: net.FlagUp},
			PeerName:      peer,
			PeerNamespace: netlink.NsFd(int(self)),
		}
		if e.MAC != nil && configure {
			veth.PeerHardwareAddr = e.MAC
		}
		err = up.LinkAdd(veth)
		if errors.Is(err, unix.EEXIST) {
			// A host end left by a run that ended without its
			// teardown (lodged killed mid-attach, its namespace
			// still pinned): replaced.
			if old, lerr := up.LinkByName(e.HostIf); lerr == nil {
				_ = up.LinkDel(old) // one that stays makes the LinkAdd below fail, which is reported
			}
			err = up.LinkAdd(veth)
		}
		if err != nil {
			return fmt.Errorf("creating veth %s: %w", e.HostIf, err)
		}
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		if !configure {
			return loopbackUp(h)
		}
		forgetNeighbours(up, br, e)
		return configureInside(h, e, peer, false)
	})
	if err != nil {
		_ = f.Detach(e.HostIf) // the attach's error is the one to report
	}
	return err
}

// forgetNeighbours drops the bridge's neighbour entries for e's addresses:
// the address may be one a removed container had, with another MAC, and
// its entry would send this one's first packets to nobody until it
// expires.
func forgetNeighbours(up *netlink.Handle, br netlink.Link, e Endpoint) {
	for _, ip := range []net.IP{e.Addr.IP, e.Addr6.IP} {
		if ip != nil {
			_ = up.NeighDel(&netlink.Neigh{LinkIndex: br.Attrs().Index, IP: ip}) // none to drop is the usual case
		}
	}
}

// configureInside names (from peer to e.IfName), addresses and raises
// the container's end of an endpoint and routes through it, with h a
// socket in its namespace. prepared is set for an end Prepare made: named
// already, its MAC still the kernel's.
func configureInside(h *netlink.Handle, e Endpoint, peer string, prepared bool) error {
	cl, err := h.LinkByName(peer)
	if err != nil {
		return err
	}
	if prepared && e.MAC != nil {
		if err := h.LinkSetHardwareAddr(cl, e.MAC); err != nil {
			return fmt.Errorf("MAC address of %s: %w", e.IfName, err)
		}
	}
	if peer != e.IfName {
		if err := h.LinkSetName(cl, e.IfName); err != nil {
			return fmt.Errorf("naming %s in the container: %w", e.IfName, err)
		}
	}
	addr := e.Addr
	if err := h.AddrAdd(cl, &netlink.Addr{IPNet: &addr}); err != nil {
		return fmt.Errorf("address %s: %w", addr.String(), err)
	}
	if err := h.LinkSetUp(cl); err != nil {
		return err
	}
	if !prepared {
		if err := loopbackUp(h); err != nil {
			return err
		}
	}
	if e.Addr6.IP != nil {
		if err := ensureAddr(h, cl, e.Addr6); err != nil {
			return fmt.Errorf("address %s: %w", e.Addr6.String(), err)
		}
	}
	if e.DefaultRoute && e.Gateway != nil {
		if err := h.RouteAdd(&netlink.Route{LinkIndex: cl.Attrs().Index, Gw: e.Gateway}); err != nil {
			return fmt.Errorf("default route: %w", err)
		}
	}
	if e.DefaultRoute && e.Gateway6 != nil {
		if err := h.RouteAdd(&netlink.Route{LinkIndex: cl.Attrs().Index, Gw: e.Gateway6, Family: netlink.FAMILY_V6}); err != nil {
			return fmt.Errorf("default IPv6 route: %w", err)
		}
	}
	return nil
}

// loopbackUp raises the loopback of h's namespace: the first link of
// every network namespace.
func loopbackUp(h *netlink.Handle) error {
	if err := h.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1}}); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}

// Detach removes an endpoint's veth pair by its host end; a missing one
// is not an error.
func (f *Fabric) Detach(hostIf string) error {
	up, _, err := f.uplink()
	if err != nil {
		return err
	}
	l, err := up.LinkByName(hostIf)
	if err != nil {
		return nil
	}
	return up.LinkDel(l)
}

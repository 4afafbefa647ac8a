package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/netns"
)

// Sandboxes are the running containers' network state, one sandbox each:
// its pinned namespace, its endpoints (link and address on a network),
// its published ports and the names DNS answers for it, persisted under
// Config.Root/sandboxes so that a restarted lodged re-adopts them. It is
// safe for concurrent use.
//
// It sees the networks through definitions (the *Store), and calls them
// only with its own lock released: an address is leased before the
// endpoint that uses it is recorded, and released after that endpoint is
// gone from the sandbox and its record. Its lock guards the sandbox table
// and every sandbox in it.
type Sandboxes struct {
	cfg     Config
	defs    definitions
	records sandboxRecords

	mu        sync.Mutex
	sandboxes map[string]*sandbox // by container ID
	// spares are the namespaces ready for starts (spares.go), taken
	// the slots of those starts took, for the filler to unpin; filling
	// is set while the filler runs, closed once the service is.
	spares          []spare
	taken           []string
	filling, closed bool
	fillers         sync.WaitGroup
}

// definitions are the networks as the sandboxes use them (*Store fits).
// A network's values do not change once it exists; it may be removed at
// any time no lease holds it.
type definitions interface {
	// find looks a network up by full ID, name or unique ID prefix.
	find(ref string) (netInfo, error)
	// byID is the network with that ID; ok is false once it is removed.
	byID(id string) (netInfo, bool)
	// atGateway is the ID of the network whose IPv4 gateway is gw, ""
	// for none.
	atGateway(gw string) string
	// lease takes container id's address on the network ref names (the
	// ones asked for, or free ones) and holds the network; release
	// gives both back.
	lease(ref, id string, want4, want6 netip.Addr) (lease, error)
	release(networkID, id string)
}

var _ definitions = (*Store)(nil)

// sandbox is a running container's network state, persisted so that a
// restarted lodged knows which addresses are taken and what to unpublish.
type sandbox struct {
	ContainerID string
	NSPath      string
	Endpoints   []endpoint
	Ports       []netns.Forward
	// Name, Hostname and Links are the container's, copied at attach
	// (and at a rename, a re-adoption): what DNS answers to and what its
	// /etc/hosts links name.
	Name     string   `json:",omitempty"`
	Hostname string   `json:",omitempty"`
	Links    []string `json:",omitempty"`
}

type endpoint struct {
	NetworkID  string
	EndpointID string
	IP         string
	PrefixLen  int
	Gateway    string
	MAC        string
	HostIf     string
	Aliases    []string
	// IP6 and the rest are its IPv6 address on a dual-stack network.
	IP6        string `json:",omitempty"`
	PrefixLen6 int    `json:",omitempty"`
	Gateway6   string `json:",omitempty"`
}

// sandboxRecords is the directory of the sandboxes' records, one JSON
// file per running container.
type sandboxRecords string

func (d sandboxRecords) path(id string) string {
	return filepath.Join(string(d), id+".json")
}

// load reads every record; an unreadable one is skipped with a warning.
func (d sandboxRecords) load(log *slog.Logger) (map[string]*sandbox, error) {
	ents, err := os.ReadDir(string(d))
	if err != nil {
		return nil, fmt.Errorf("reading the sandbox records: %w", err)
	}
	out := map[string]*sandbox{}
	for _, e := range ents {
		var sb sandbox
		if err := readJSON(filepath.Join(string(d), e.Name()), &sb); err != nil {
			log.Warn("skipping unreadable sandbox record: its container starts without its network settings", "file", e.Name(), "err", err)
			continue
		}
		out[sb.ContainerID] = &sb
	}
	return out, nil
}

// save writes a sandbox's record. Callers hold the Sandboxes' lock. It is
// not synced to disk: a sandbox means nothing after the machine restarts,
// and a crash of lodged alone leaves the page cache intact.
func (d sandboxRecords) save(sb *sandbox) error {
	b, err := json.Marshal(sb)
	if err != nil {
		return err
	}
	path := d.path(sb.ContainerID)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Validate checks at create time that a container's port bindings parse.
// The networks it names are looked up when it starts, as Docker does (the
// docker CLI takes a 404 from create for a missing image and pulls).
func (s *Sandboxes) Validate(hc *container.HostConfig, nc *network.NetworkingConfig) error {
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
func (s *Sandboxes) sandboxFor(id string) *sandbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sandboxes[id]
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
func (s *Sandboxes) Attach(ctx context.Context, sp Spec) (nsPath string, err error) {
	names := sp.networks()
	if len(names) == 0 {
		return "", nil
	}
	if s.cfg.Fabric == nil {
		return "", errdefs.Unavailablef("lodged has no network namespace for bridge networks: run the container with --network none or host")
	}
	s.Detach(ctx, sp.ID) // whatever a crash left
	nsPath = filepath.Join(s.cfg.RunDir, "netns", sp.ID)
	var pre *spare
	if names[0] == network.NetworkBridge {
		if r, err := s.defs.find(network.NetworkBridge); err == nil {
			if sp, ok := s.takeSpare(r.Bridge, nsPath); ok {
				pre = &sp
			}
		}
	}
	if pre == nil {
		if err := s.cfg.Namespaces.Pin(nsPath); err != nil {
			return "", err
		}
	}
	sb := &sandbox{ContainerID: sp.ID, NSPath: nsPath, Name: sp.Name, Hostname: sp.Hostname, Links: sp.Links}
	defer func() {
		if err != nil {
			s.teardown(ctx, sb)
		}
	}()
	for i, name := range names {
		var linked *spare
		if i == 0 {
			linked = pre
		}
		if err := s.join(sb, name, sp.endpointConfig(name), i == 0, linked); err != nil {
			return "", err
		}
	}
	if err := s.publish(ctx, sp, sb); err != nil {
		return "", err
	}
	return nsPath, nil
}

// join leases an address on the named network, records the endpoint
// and wires the link. The first network gives the default route. The
// address is leased (and the endpoint persisted) before the link exists,
// so a concurrent start cannot take it too. On error, what it recorded
// is the caller's to drop (teardown, dropEndpoint). pre is the spare
// whose namespace the sandbox took, linked to this network's bridge
// already; nil for a link to make.
func (s *Sandboxes) join(sb *sandbox, name string, es *network.EndpointSettings, primary bool, pre *spare) error {
	var want4, want6 netip.Addr
	if es != nil && es.IPAMConfig != nil {
		want4, want6 = es.IPAMConfig.IPv4Address, es.IPAMConfig.IPv6Address
	}
	l, err := s.defs.lease(name, sb.ContainerID, want4, want6)
	if err != nil {
		return err
	}
	r := l.net
	ip := net.IP(l.addr.Addr().AsSlice())
	mac := net.HardwareAddr{0x02, 0x42, ip[0], ip[1], ip[2], ip[3]}
	if es != nil && len(es.MacAddress) == 6 {
		mac = net.HardwareAddr(es.MacAddress) // --mac-address
	}
	e := endpoint{NetworkID: r.ID, EndpointID: newID(), IP: ip.String(), PrefixLen: l.addr.Bits(), Gateway: r.Gateway,
		MAC: mac.String(), HostIf: hostIf(sb.ContainerID, r.ID)}
	if pre != nil {
		e.HostIf = pre.hostIf
	}
	var addr6 net.IPNet
	var gw6 net.IP
	if l.addr6.IsValid() {
		e.IP6, e.PrefixLen6, e.Gateway6 = l.addr6.Addr().String(), l.addr6.Bits(), l.gateway6
		addr6 = net.IPNet{IP: net.IP(l.addr6.Addr().AsSlice()), Mask: net.CIDRMask(l.addr6.Bits(), 128)}
		gw6 = net.ParseIP(l.gateway6)
	}
	if es != nil && !r.Builtin {
		e.Aliases = es.Aliases
	}
	s.mu.Lock()
	ifName := "eth" + strconv.Itoa(len(sb.Endpoints))
	sb.Endpoints = append(sb.Endpoints, e)
	s.sandboxes[sb.ContainerID] = sb
	err = s.records.save(sb)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	link := netns.Endpoint{Bridge: r.Bridge, HostIf: e.HostIf, NSPath: sb.NSPath,
		IfName: ifName, Addr: net.IPNet{IP: ip, Mask: net.CIDRMask(l.addr.Bits(), 32)}, Gateway: net.ParseIP(r.Gateway).To4(),
		MAC: mac, DefaultRoute: primary, Addr6: addr6, Gateway6: gw6}
	if pre != nil {
		err = s.cfg.Fabric.Configure(link)
	} else {
		err = s.cfg.Fabric.Attach(link)
	}
	if err != nil {
		return err
	}
	emit(s.cfg.Events, events.ActionConnect, r.ID, r.Name, sb.ContainerID)
	return nil
}

// publish forwards the container's published ports to its first
// address, choosing host ports where none is given.
func (s *Sandboxes) publish(ctx context.Context, sp Spec, sb *sandbox) error {
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
	if s.cfg.Ports == nil {
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
			if err := s.publishOne(ctx, sb, f, lo, hi); err != nil {
				return err
			}
		}
	}
	return nil
}

// publishOne publishes f on a host port in [lo, hi], or a free one when
// lo is 0, and records it.
func (s *Sandboxes) publishOne(ctx context.Context, sb *sandbox, f netns.Forward, lo, hi int) error {
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
		if err = s.cfg.Ports.Publish(ctx, f); err == nil {
			break
		}
		if !errors.Is(err, errdefs.ErrConflict) {
			return err
		}
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	sb.Ports = append(sb.Ports, f)
	werr := s.records.save(sb)
	s.mu.Unlock()
	return werr
}

// Detach undoes Attach for a container that has stopped: ports, links,
// addresses and the pinned namespace. It is idempotent.
func (s *Sandboxes) Detach(ctx context.Context, id string) {
	s.mu.Lock()
	sb := s.sandboxes[id]
	s.mu.Unlock()
	if sb != nil {
		s.teardown(ctx, sb)
	}
}

func (s *Sandboxes) teardown(ctx context.Context, sb *sandbox) {
	if s.cfg.Ports != nil && len(sb.Ports) > 0 {
		if err := s.cfg.Ports.Unpublish(ctx, sb.Ports); err != nil {
			s.cfg.Log.Warn("unpublishing ports", "container", sb.ContainerID, "err", err)
		}
	}
	// The links go with the namespace, which the kernel tears down in
	// the background once unpinned: deleting a veth here would wait for
	// the kernel's network-wide synchronisation on every stop. A link
	// left from it is replaced when the name comes back (Fabric.Attach).
	if err := s.cfg.Namespaces.Unpin(sb.NSPath); err != nil {
		s.cfg.Log.Warn("network namespace", "container", sb.ContainerID, "err", err)
	}
	s.mu.Lock()
	delete(s.sandboxes, sb.ContainerID)
	if err := os.Remove(s.records.path(sb.ContainerID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Left, it would hold the addresses at the next start of lodged.
		s.cfg.Log.Warn("removing a sandbox record", "container", sb.ContainerID, "err", err)
	}
	gone := sb.Endpoints
	s.mu.Unlock()
	for _, e := range gone {
		s.defs.release(e.NetworkID, sb.ContainerID)
		if r, ok := s.defs.byID(e.NetworkID); ok {
			emit(s.cfg.Events, events.ActionDisconnect, r.ID, r.Name, sb.ContainerID)
		}
	}
}

// Readopt restores what a running container published, after a restart
// of lodged (the port driver keeps its forwards unless the namespace was
// rebuilt).
func (s *Sandboxes) Readopt(ctx context.Context, id string) {
	sb := s.sandboxFor(id)
	if sb == nil || s.cfg.Ports == nil || len(sb.Ports) == 0 {
		return
	}
	if err := s.cfg.Ports.Ensure(ctx, sb.Ports); err != nil {
		s.cfg.Log.Warn("restoring published ports", "container", id, "err", err)
	}
}

// Republish restores every running container's published ports, after
// the port driver was started anew (lodged's host side died and the
// keeper took its work over, with no forwards). It returns what failed,
// for the caller to try again.
func (s *Sandboxes) Republish(ctx context.Context) error {
	s.mu.Lock()
	var sbs []*sandbox
	for _, sb := range s.sandboxes {
		sbs = append(sbs, sb)
	}
	s.mu.Unlock()
	if s.cfg.Ports == nil {
		return nil
	}
	var errs []error
	for _, sb := range sbs {
		if len(sb.Ports) > 0 {
			if err := s.cfg.Ports.Ensure(ctx, sb.Ports); err != nil {
				errs = append(errs, fmt.Errorf("container %s: %w", sb.ContainerID, err))
			}
		}
	}
	return errors.Join(errs...)
}

// DropStale detaches the sandboxes of containers that no longer run
// (running holds the IDs of those that do), as the engine finds them when
// it has loaded its records.
func (s *Sandboxes) DropStale(ctx context.Context, running map[string]bool) {
	s.mu.Lock()
	var stale []string
	for id := range s.sandboxes {
		if !running[id] {
			stale = append(stale, id)
		}
	}
	s.mu.Unlock()
	for _, id := range stale {
		s.Detach(ctx, id)
	}
}

// SetNames records a running container's names and links (after a
// rename, or for a sandbox recorded before it kept them): what its DNS
// answers to and what /etc/hosts of containers linking to it name.
func (s *Sandboxes) SetNames(id, name, hostname string, links []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sb := s.sandboxes[id]; sb != nil {
		sb.Name, sb.Hostname, sb.Links = name, hostname, links
		if err := s.records.save(sb); err != nil {
			s.cfg.Log.Warn("saving a sandbox record", "container", id, "err", err)
		}
	}
}

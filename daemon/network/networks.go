package network

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/internal/atomicfile"
	"github.com/lodge-containers/lodge/netns"
)

// Fabric wires bridges and links in lodged's network namespace
// (netns.Fabric does).
type Fabric interface {
	EnsureBridge(netns.Bridge) error
	DeleteBridge(name string) error
	Attach(netns.Endpoint) error
	Detach(hostIf string) error
	ApplyRules([]netns.RoutedNet) error
}

// Namespaces pins a sandbox's network namespace on a path, so that it
// outlives the processes in it, and unpins it (netns.Pin and netns.Unpin
// do).
type Namespaces interface {
	Pin(path string) error
	Unpin(path string) error
}

// netnsPins is Namespaces in lodged's own mount namespace.
type netnsPins struct{}

func (netnsPins) Pin(path string) error   { return netns.Pin(path) }
func (netnsPins) Unpin(path string) error { return netns.Unpin(path) }

// PortPublisher forwards host ports into the namespace (netns.Ports does).
type PortPublisher interface {
	Publish(ctx context.Context, f netns.Forward) error
	Unpublish(ctx context.Context, fs []netns.Forward) error
	Ensure(ctx context.Context, fs []netns.Forward) error
}

// Config wires the network service.
type Config struct {
	Root   string // <data-root>/networks: one JSON file per network, sandboxes/
	RunDir string // pinned namespaces live under RunDir/netns
	// Fabric and Ports are nil when lodged has no network namespace of its
	// own or no port driver: containers then get loopback only, and
	// publishing a port is an error.
	Fabric Fabric
	Ports  PortPublisher
	// Namespaces pins sandboxes' namespaces; nil is netns's Pin and
	// Unpin.
	Namespaces Namespaces
	// Resolver serves names on user-defined networks; nil for none.
	Resolver NameServer
	// HostLoopback and UplinkDNS are where the uplink shows the host's
	// loopback (--add-host NAME:host-gateway) and its DNS forwarder
	// (containers' name server when the host has only loopback ones);
	// empty without an uplink.
	HostLoopback, UplinkDNS string
	Log                     *slog.Logger
	// Events receives network events (create, destroy, connect,
	// disconnect); nil drops them.
	Events Publisher
}

// Publisher receives events (*Events fits).
type Publisher interface {
	Publish(typ events.Type, action events.Action, id string, attrs map[string]string)
}

// NameServer answers DNS for the containers of user-defined networks on
// their gateway addresses.
type NameServer interface {
	Serve(gateway net.IP) error
	Stop(gateway net.IP)
	// SetLookup gives it the names: the addresses of a name on the
	// network whose gateway is asked, as client (the asking address) sees
	// them.
	SetLookup(func(gateway, client net.IP, name string) []net.IP)
}

// Networks owns the bridge networks, their address allocations and each
// running container's sandbox (its pinned namespace, links and published
// ports). It is safe for concurrent use.
//
// It knows containers only by the values the engine hands it (IDs, and
// the names, hostname and links a sandbox keeps for DNS and /etc/hosts):
// it holds no container service and takes no container's lock. Its own
// lock is taken after a container's, never before.
type Networks struct {
	Config

	mu        sync.Mutex
	nets      map[string]*netRecord // by ID
	sandboxes map[string]*sandbox   // by container ID
}

// netRecord is one network as persisted.
type netRecord struct {
	ID       string
	Name     string
	Created  time.Time
	Subnet   string
	Gateway  string
	Bridge   string
	Internal bool
	Labels   map[string]string
	Options  map[string]string
	// Builtin is the default "bridge" network, which cannot be removed and
	// has no DNS of its own (as in Docker).
	Builtin bool
	// IPRange and Aux narrow which addresses of Subnet containers get
	// (--ip-range, --aux-address).
	IPRange string            `json:",omitempty"`
	Aux     map[string]string `json:",omitempty"`
	// Subnet6 and the rest are the network's IPv6 subnet when it carries
	// IPv6 (--ipv6); empty otherwise.
	Subnet6  string            `json:",omitempty"`
	Gateway6 string            `json:",omitempty"`
	IPRange6 string            `json:",omitempty"`
	Aux6     map[string]string `json:",omitempty"`
}

func (n *netRecord) subnet() net.IPNet {
	s, _ := netns.ParseSubnet(n.Subnet)
	return s
}

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

const defaultBridgeSubnet = "172.17.0.0/16"

// New loads the networks (creating the default bridge on first
// use) and sets their bridges and rules up again.
func New(cfg Config) (*Networks, error) {
	if cfg.Namespaces == nil {
		cfg.Namespaces = netnsPins{}
	}
	n := &Networks{Config: cfg, nets: map[string]*netRecord{}, sandboxes: map[string]*sandbox{}}
	if err := os.MkdirAll(filepath.Join(cfg.Root, "sandboxes"), 0o700); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(cfg.Root)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		var r netRecord
		if err := readJSON(filepath.Join(cfg.Root, e.Name()), &r); err != nil {
			cfg.Log.Warn("skipping unreadable network record", "file", e.Name(), "err", err)
			continue
		}
		n.nets[r.ID] = &r
	}
	if n.byName(network.NetworkBridge) == nil {
		r := &netRecord{ID: newID(), Name: network.NetworkBridge, Created: time.Now().UTC(), Subnet: defaultBridgeSubnet,
			Gateway: "172.17.0.1", Bridge: netns.BridgePrefix + "0", Builtin: true,
			Options: map[string]string{"com.docker.network.bridge.default_bridge": "true", "com.docker.network.bridge.name": netns.BridgePrefix + "0"}}
		if err := n.saveNet(r); err != nil {
			return nil, err
		}
		n.nets[r.ID] = r
	}
	sbs, err := os.ReadDir(filepath.Join(cfg.Root, "sandboxes"))
	if err != nil {
		// Without them, running containers' addresses look free.
		return nil, fmt.Errorf("reading the sandbox records: %w", err)
	}
	for _, e := range sbs {
		var sb sandbox
		if err := readJSON(filepath.Join(cfg.Root, "sandboxes", e.Name()), &sb); err != nil {
			cfg.Log.Warn("skipping unreadable sandbox record: its container starts without its network settings", "file", e.Name(), "err", err)
			continue
		}
		n.sandboxes[sb.ContainerID] = &sb
	}
	if cfg.Resolver != nil {
		cfg.Resolver.SetLookup(n.resolve)
	}
	if cfg.Fabric != nil {
		for _, r := range n.nets {
			if err := n.bringUp(r); err != nil {
				return nil, err
			}
		}
		if err := n.applyRules(); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func newID() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b[:])
}

// writeJSON persists a network's record, synced: without it, a network
// would vanish at the next start.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (n *Networks) saveNet(r *netRecord) error {
	return writeJSON(filepath.Join(n.Root, r.ID+".json"), r)
}

func (n *Networks) sandboxPath(id string) string {
	return filepath.Join(n.Root, "sandboxes", id+".json")
}

// bringUp creates a network's bridge and starts its name server.
func (n *Networks) bringUp(r *netRecord) error {
	sub := r.subnet()
	gw := net.ParseIP(r.Gateway).To4()
	b := netns.Bridge{Name: r.Bridge, Gateway: net.IPNet{IP: gw, Mask: sub.Mask}}
	if p6, ok := r.pool6(); ok {
		b.Gateway6 = net.IPNet{IP: net.IP(p6.Gateway.AsSlice()), Mask: net.CIDRMask(p6.Subnet.Bits(), 128)}
	}
	if err := n.Fabric.EnsureBridge(b); err != nil {
		return err
	}
	if n.Resolver != nil && !r.Builtin {
		if err := n.Resolver.Serve(gw); err != nil {
			n.Log.Warn("no name server for network", "network", r.Name, "err", err)
		}
	}
	return nil
}

// applyRules rewrites NAT and isolation for every network. Callers hold
// n.mu or are still constructing n.
func (n *Networks) applyRules() error {
	var rn []netns.RoutedNet
	for _, r := range n.nets {
		rn = append(rn, netns.RoutedNet{Bridge: r.Bridge, Subnet: r.subnet(), Internal: r.Internal})
	}
	sort.Slice(rn, func(i, j int) bool { return rn[i].Bridge < rn[j].Bridge })
	return n.Fabric.ApplyRules(rn)
}

func (n *Networks) byName(name string) *netRecord {
	for _, r := range n.nets {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// lookup finds a network as Docker does: by full ID first, then by name,
// then by unique ID prefix. Callers hold n.mu.
func (n *Networks) lookup(ref string) (*netRecord, error) {
	if r, ok := n.nets[ref]; ok {
		return r, nil
	}
	if r := n.byName(ref); r != nil {
		return r, nil
	}
	var found []*netRecord
	for id, r := range n.nets {
		if ref != "" && strings.HasPrefix(id, ref) {
			found = append(found, r)
		}
	}
	switch len(found) {
	case 0:
		return nil, errdefs.NotFoundf("network %s not found", ref)
	case 1:
		return found[0], nil
	}
	return nil, errdefs.InvalidArgumentf("network %s is ambiguous (%d matches found based on ID prefix)", ref, len(found))
}

// Create makes a user-defined bridge network, with an IPv6 subnet too
// when asked (dual stack).
func (n *Networks) Create(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	// Docker takes any name that is not blank: spaces and all.
	if strings.TrimSpace(req.Name) == "" {
		return network.CreateResponse{}, errdefs.InvalidArgumentf("invalid name: name is empty")
	}
	switch req.Driver {
	case "", "bridge":
	default:
		return network.CreateResponse{}, errdefs.NotImplementedf("network driver %q: lodge has bridge networks only", req.Driver)
	}
	if req.EnableIPv4 != nil && !*req.EnableIPv4 {
		return network.CreateResponse{}, errdefs.NotImplementedf("IPv6-only networks (--ipv4=false) are not implemented in lodge")
	}
	enableIPv6, err := ipv6Asked(req)
	if err != nil {
		return network.CreateResponse{}, err
	}
	var cfg4, cfg6 []network.IPAMConfig
	if req.IPAM != nil {
		if err := validateIPAM(req.IPAM.Config, enableIPv6); err != nil {
			return network.CreateResponse{}, err
		}
		for _, c := range req.IPAM.Config {
			if c.Subnet.Addr().Is6() {
				cfg6 = append(cfg6, c)
			} else {
				cfg4 = append(cfg4, c)
			}
		}
	}
	if len(cfg4) > 1 || len(cfg6) > 1 {
		return network.CreateResponse{}, errdefs.NotImplementedf("lodge takes one subnet of each family per network")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch req.Name {
	case network.NetworkHost, network.NetworkNone, network.NetworkDefault:
		return network.CreateResponse{}, errdefs.PermissionDeniedf("%s is a pre-defined network and cannot be created", req.Name)
	}
	if n.byName(req.Name) != nil {
		return network.CreateResponse{}, errdefs.Conflictf("network with name %s already exists", req.Name)
	}
	id := newID()
	r := &netRecord{ID: id, Name: req.Name, Created: time.Now().UTC(), Bridge: netns.BridgePrefix + id[:10],
		Internal: req.Internal, Labels: req.Labels, Options: req.Options}
	if err := n.addressIPv4(r, cfg4); err != nil {
		return network.CreateResponse{}, err
	}
	if enableIPv6 {
		if err := n.addressIPv6(r, cfg6); err != nil {
			return network.CreateResponse{}, err
		}
	}
	if n.Fabric != nil {
		if err := n.bringUp(r); err != nil {
			if derr := n.Fabric.DeleteBridge(r.Bridge); derr != nil {
				n.Log.Warn("removing the bridge of a network that failed", "bridge", r.Bridge, "err", derr)
			}
			return network.CreateResponse{}, err
		}
	}
	if err := n.saveNet(r); err != nil {
		return network.CreateResponse{}, err
	}
	n.nets[id] = r
	if n.Fabric != nil {
		if err := n.applyRules(); err != nil {
			n.Log.Warn("network rules", "err", err)
		}
	}
	n.emit(events.ActionCreate, r, "")
	return network.CreateResponse{ID: id, Warning: ""}, nil
}

// emit publishes a network event as Docker words it: the network's name
// and driver, and the container for connect and disconnect.
func (n *Networks) emit(action events.Action, r *netRecord, containerID string) {
	if n.Events == nil {
		return
	}
	attrs := map[string]string{"name": r.Name, "type": "bridge"}
	if containerID != "" {
		attrs["container"] = containerID
	}
	n.Events.Publish(events.NetworkEventType, action, r.ID, attrs)
}

// Remove deletes a user-defined network that no running container uses.
// Stopped containers configured for it do not hold it, as in Docker: they
// fail to start until it exists again.
func (n *Networks) Remove(ctx context.Context, ref string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch ref {
	case network.NetworkHost, network.NetworkNone:
		return errdefs.PermissionDeniedf("%s is a pre-defined network and cannot be removed", ref)
	}
	r, err := n.lookup(ref)
	if err != nil {
		return err
	}
	if r.Builtin {
		return errdefs.PermissionDeniedf("%s is a pre-defined network and cannot be removed", r.Name)
	}
	if users := n.usersLocked(r); len(users) > 0 {
		return errdefs.PermissionDeniedf("error while removing network: network %s has active endpoints (%s)", r.Name, strings.Join(users, ", "))
	}
	if err := n.removeLocked(r); err != nil {
		return err
	}
	n.emit(events.ActionDestroy, r, "")
	return nil
}

func (n *Networks) removeLocked(r *netRecord) error {
	if n.Fabric != nil {
		if n.Resolver != nil {
			n.Resolver.Stop(net.ParseIP(r.Gateway))
		}
		if err := n.Fabric.DeleteBridge(r.Bridge); err != nil {
			return err
		}
	}
	if err := os.Remove(filepath.Join(n.Root, r.ID+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	delete(n.nets, r.ID)
	if n.Fabric != nil {
		return n.applyRules()
	}
	return nil
}

// usersLocked names the running containers with an endpoint on r.
// Callers hold n.mu.
func (n *Networks) usersLocked(r *netRecord) []string {
	var out []string
	for _, sb := range n.sandboxes {
		for _, e := range sb.Endpoints {
			if e.NetworkID == r.ID {
				name := sb.Name
				if name == "" {
					name = sb.ContainerID[:12]
				}
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return dedupe(out)
}

// DropStale detaches the sandboxes of containers that no longer run
// (running holds the IDs of those that do), as the engine finds them when
// it has loaded its records.
func (n *Networks) DropStale(ctx context.Context, running map[string]bool) {
	n.mu.Lock()
	var stale []string
	for id := range n.sandboxes {
		if !running[id] {
			stale = append(stale, id)
		}
	}
	n.mu.Unlock()
	for _, id := range stale {
		n.Detach(ctx, id)
	}
}

// SetNames records a running container's names and links (after a
// rename, or for a sandbox recorded before it kept them): what its DNS
// answers to and what /etc/hosts of containers linking to it name.
func (n *Networks) SetNames(id, name, hostname string, links []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if sb := n.sandboxes[id]; sb != nil {
		sb.Name, sb.Hostname, sb.Links = name, hostname, links
		if err := n.saveSandbox(id, sb); err != nil {
			n.Log.Warn("saving a sandbox record", "container", id, "err", err)
		}
	}
}

func dedupe(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || s[i-1] != v {
			out = append(out, v)
		}
	}
	return out
}

// Prune removes the user-defined networks no container uses.
func (n *Networks) Prune(ctx context.Context) (network.PruneReport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	rep := network.PruneReport{NetworksDeleted: []string{}}
	for _, r := range n.nets {
		if r.Builtin || len(n.usersLocked(r)) > 0 {
			continue
		}
		if err := n.removeLocked(r); err != nil {
			return rep, err
		}
		rep.NetworksDeleted = append(rep.NetworksDeleted, r.Name)
	}
	sort.Strings(rep.NetworksDeleted)
	return rep, nil
}

// List returns the networks that pass Docker's filters (name, id, label,
// driver, type), in Docker's shape, the pre-defined host and none
// included.
func (n *Networks) List(ctx context.Context, filters map[string][]string) ([]network.Inspect, error) {
	for k := range filters {
		switch k {
		case "name", "id", "label", "driver", "type", "scope", "dangling":
		default:
			return nil, errdefs.InvalidArgumentf("invalid filter '%s'", k)
		}
	}
	var out []network.Inspect
	for _, in := range n.all() {
		if matchNetwork(in, filters) {
			out = append(out, in)
		}
	}
	return out, nil
}

// matchNetwork applies list filters: each key must match one of its
// values.
func matchNetwork(in network.Inspect, filters map[string][]string) bool {
	for k, vs := range filters {
		ok := false
		for _, v := range vs {
			switch k {
			case "name":
				ok = ok || strings.Contains(in.Name, v)
			case "id":
				ok = ok || strings.HasPrefix(in.ID, v)
			case "driver":
				ok = ok || in.Driver == v
			case "scope":
				ok = ok || in.Scope == v
			case "type":
				builtin := in.Name == network.NetworkBridge || in.Name == network.NetworkHost || in.Name == network.NetworkNone
				ok = ok || v == "builtin" && builtin || v == "custom" && !builtin
			case "dangling":
				ok = ok || (v == "true" || v == "1") == (len(in.Containers) == 0)
			case "label":
				key, val, hasVal := strings.Cut(v, "=")
				have, present := in.Labels[key]
				ok = ok || present && (!hasVal || have == val)
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (n *Networks) all() []network.Inspect {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []network.Inspect
	for _, r := range n.nets {
		out = append(out, n.inspectLocked(r))
	}
	for _, name := range []string{network.NetworkHost, network.NetworkNone} {
		out = append(out, network.Inspect{Network: network.Network{Name: name, ID: pseudoID(name), Scope: "local",
			Driver: map[string]string{"host": "host", "none": "null"}[name], EnableIPv4: true, IPAM: network.IPAM{Driver: "default", Config: []network.IPAMConfig{}},
			Options: map[string]string{}, Labels: map[string]string{}}, Containers: map[string]network.EndpointResource{}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// pseudoID is a stable ID for the pre-defined networks lodge keeps no
// record of.
func pseudoID(name string) string {
	h := sha256.Sum256([]byte("lodge-network-" + name))
	return hex.EncodeToString(h[:])
}

// Inspect returns one network.
func (n *Networks) Inspect(ctx context.Context, ref string) (network.Inspect, error) {
	switch ref {
	case network.NetworkHost, network.NetworkNone, pseudoID(network.NetworkHost), pseudoID(network.NetworkNone):
		for _, i := range n.all() {
			if i.Name == ref || i.ID == ref {
				return i, nil
			}
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	r, err := n.lookup(ref)
	if err != nil {
		return network.Inspect{}, err
	}
	return n.inspectLocked(r), nil
}

func (n *Networks) inspectLocked(r *netRecord) network.Inspect {
	ipam := []network.IPAMConfig{ipamConfig(r.pool(), r.Aux)}
	if p6, ok := r.pool6(); ok {
		ipam = append(ipam, ipamConfig(p6, r.Aux6))
	}
	opts := r.Options
	if opts == nil {
		opts = map[string]string{}
	}
	labels := r.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	in := network.Inspect{Network: network.Network{
		Name: r.Name, ID: r.ID, Created: r.Created, Scope: "local", Driver: "bridge", EnableIPv4: true, EnableIPv6: r.Subnet6 != "",
		IPAM:     network.IPAM{Driver: "default", Options: map[string]string{}, Config: ipam},
		Internal: r.Internal, Options: opts, Labels: labels,
	}, Containers: map[string]network.EndpointResource{}}
	for _, sb := range n.sandboxes {
		for _, e := range sb.Endpoints {
			if e.NetworkID != r.ID {
				continue
			}
			ip, _ := netip.ParseAddr(e.IP)
			mac, _ := net.ParseMAC(e.MAC)
			res := network.EndpointResource{Name: sb.Name, EndpointID: e.EndpointID,
				MacAddress: network.HardwareAddr(mac), IPv4Address: netip.PrefixFrom(ip, e.PrefixLen)}
			if ip6, err := netip.ParseAddr(e.IP6); err == nil {
				res.IPv6Address = netip.PrefixFrom(ip6, e.PrefixLen6)
			}
			in.Containers[sb.ContainerID] = res
		}
	}
	return in
}

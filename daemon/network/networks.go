package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

// Store holds the network definitions: the records under Config.Root,
// their bridges, NAT and isolation rules and name servers, and the
// addresses leased on them (IPAM). It is safe for concurrent use.
//
// It knows no sandbox. A container's hold on a network is its lease
// (lease, release): the sandboxes take one before an endpoint exists and
// give it back once the endpoint is gone, and a network with a lease is
// not removed. Its lock guards the records and the leases; it calls
// nothing that takes another lock of the service while holding it.
type Store struct {
	cfg Config

	mu     sync.Mutex
	nets   map[string]*netRecord       // by ID
	leases map[string]map[string]lease // by network ID, then container ID
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

// info is the record as the sandboxes see it.
func (n *netRecord) info() netInfo {
	return netInfo{ID: n.ID, Name: n.Name, Bridge: n.Bridge, Builtin: n.Builtin, Gateway: n.Gateway}
}

// netInfo is a network as the sandboxes see it: values, copied from its
// record.
type netInfo struct {
	ID, Name, Bridge string
	Builtin          bool
	Gateway          string // IPv4
}

const defaultBridgeSubnet = "172.17.0.0/16"

// loadStore reads the network records (creating the default bridge on
// first use), with the leases the sandboxes on disk hold. It brings no
// bridge up: bringUpAll does.
func loadStore(cfg Config, leases map[string]map[string]lease) (*Store, error) {
	s := &Store{cfg: cfg, nets: map[string]*netRecord{}, leases: leases}
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
		s.nets[r.ID] = &r
	}
	if s.byName(network.NetworkBridge) == nil {
		r := &netRecord{ID: newID(), Name: network.NetworkBridge, Created: time.Now().UTC(), Subnet: defaultBridgeSubnet,
			Gateway: "172.17.0.1", Bridge: netns.BridgePrefix + "0", Builtin: true,
			Options: map[string]string{"com.docker.network.bridge.default_bridge": "true", "com.docker.network.bridge.name": netns.BridgePrefix + "0"}}
		if err := s.saveNet(r); err != nil {
			return nil, err
		}
		s.nets[r.ID] = r
	}
	return s, nil
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

func (s *Store) saveNet(r *netRecord) error {
	return writeJSON(filepath.Join(s.cfg.Root, r.ID+".json"), r)
}

// bringUpAll sets every network's bridge and the rules up, at start.
func (s *Store) bringUpAll() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.nets {
		if err := s.bringUp(r); err != nil {
			return err
		}
	}
	return s.applyRules()
}

// bringUp creates a network's bridge and starts its name server.
func (s *Store) bringUp(r *netRecord) error {
	sub := r.subnet()
	gw := net.ParseIP(r.Gateway).To4()
	b := netns.Bridge{Name: r.Bridge, Gateway: net.IPNet{IP: gw, Mask: sub.Mask}}
	if p6, ok := r.pool6(); ok {
		b.Gateway6 = net.IPNet{IP: net.IP(p6.Gateway.AsSlice()), Mask: net.CIDRMask(p6.Subnet.Bits(), 128)}
	}
	if err := s.cfg.Fabric.EnsureBridge(b); err != nil {
		return err
	}
	if s.cfg.Resolver != nil && !r.Builtin {
		if err := s.cfg.Resolver.Serve(gw); err != nil {
			s.cfg.Log.Warn("no name server for network", "network", r.Name, "err", err)
		}
	}
	return nil
}

// applyRules rewrites NAT and isolation for every network. Callers hold
// s.mu.
func (s *Store) applyRules() error {
	var rn []netns.RoutedNet
	for _, r := range s.nets {
		rn = append(rn, netns.RoutedNet{Bridge: r.Bridge, Subnet: r.subnet(), Internal: r.Internal})
	}
	sort.Slice(rn, func(i, j int) bool { return rn[i].Bridge < rn[j].Bridge })
	return s.cfg.Fabric.ApplyRules(rn)
}

func (s *Store) byName(name string) *netRecord {
	for _, r := range s.nets {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// lookup finds a network as Docker does: by full ID first, then by name,
// then by unique ID prefix. Callers hold s.mu.
func (s *Store) lookup(ref string) (*netRecord, error) {
	if r, ok := s.nets[ref]; ok {
		return r, nil
	}
	if r := s.byName(ref); r != nil {
		return r, nil
	}
	var found []*netRecord
	for id, r := range s.nets {
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

// find looks a network up as lookup does.
func (s *Store) find(ref string) (netInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookup(ref)
	if err != nil {
		return netInfo{}, err
	}
	return r.info(), nil
}

// byID is the network with that ID; ok is false when there is none (it
// was removed).
func (s *Store) byID(id string) (netInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.nets[id]; r != nil {
		return r.info(), true
	}
	return netInfo{}, false
}

// atGateway is the ID of the network whose IPv4 gateway is gw, "" for
// none.
func (s *Store) atGateway(gw string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var id string
	for _, r := range s.nets {
		if r.Gateway == gw {
			id = r.ID
		}
	}
	return id
}

// NetRef is a network as the engine names it: its ID and name.
type NetRef struct{ ID, Name string }

// Ref finds a network by name, ID or ID prefix.
func (s *Store) Ref(ref string) (NetRef, error) {
	r, err := s.find(ref)
	if err != nil {
		return NetRef{}, err
	}
	return NetRef{ID: r.ID, Name: r.Name}, nil
}

// Create makes a user-defined bridge network, with an IPv6 subnet too
// when asked (dual stack).
func (s *Store) Create(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error) {
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
	s.mu.Lock()
	defer s.mu.Unlock()
	switch req.Name {
	case network.NetworkHost, network.NetworkNone, network.NetworkDefault:
		return network.CreateResponse{}, errdefs.PermissionDeniedf("%s is a pre-defined network and cannot be created", req.Name)
	}
	if s.byName(req.Name) != nil {
		return network.CreateResponse{}, errdefs.Conflictf("network with name %s already exists", req.Name)
	}
	id := newID()
	r := &netRecord{ID: id, Name: req.Name, Created: time.Now().UTC(), Bridge: netns.BridgePrefix + id[:10],
		Internal: req.Internal, Labels: req.Labels, Options: req.Options}
	if err := s.addressIPv4(r, cfg4); err != nil {
		return network.CreateResponse{}, err
	}
	if enableIPv6 {
		if err := s.addressIPv6(r, cfg6); err != nil {
			return network.CreateResponse{}, err
		}
	}
	if s.cfg.Fabric != nil {
		if err := s.bringUp(r); err != nil {
			if derr := s.cfg.Fabric.DeleteBridge(r.Bridge); derr != nil {
				s.cfg.Log.Warn("removing the bridge of a network that failed", "bridge", r.Bridge, "err", derr)
			}
			return network.CreateResponse{}, err
		}
	}
	if err := s.saveNet(r); err != nil {
		return network.CreateResponse{}, err
	}
	s.nets[id] = r
	if s.cfg.Fabric != nil {
		if err := s.applyRules(); err != nil {
			s.cfg.Log.Warn("network rules", "err", err)
		}
	}
	emit(s.cfg.Events, events.ActionCreate, r.ID, r.Name, "")
	return network.CreateResponse{ID: id, Warning: ""}, nil
}

// inUse is remove's refusal of a network that containers hold leases on
// (Networks.Remove words it with their names).
type inUse struct {
	network    string
	containers []string // IDs
}

func (e *inUse) Error() string {
	return fmt.Sprintf("network %s has active endpoints (%d containers)", e.network, len(e.containers))
}

// remove deletes a user-defined network no container holds a lease on;
// when some do, it removes nothing and returns an *inUse.
func (s *Store) remove(ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ref {
	case network.NetworkHost, network.NetworkNone:
		return errdefs.PermissionDeniedf("%s is a pre-defined network and cannot be removed", ref)
	}
	r, err := s.lookup(ref)
	if err != nil {
		return err
	}
	if r.Builtin {
		return errdefs.PermissionDeniedf("%s is a pre-defined network and cannot be removed", r.Name)
	}
	if held := s.leases[r.ID]; len(held) > 0 {
		busy := &inUse{network: r.Name}
		for id := range held {
			busy.containers = append(busy.containers, id)
		}
		sort.Strings(busy.containers)
		return busy
	}
	if err := s.removeLocked(r); err != nil {
		return err
	}
	emit(s.cfg.Events, events.ActionDestroy, r.ID, r.Name, "")
	return nil
}

// Close stops the name servers the store started (one per user-defined
// network, each a pair of goroutines): they end with the daemon. The
// networks, their bridges and the containers on them stay for the next
// daemon, which serves the names again when it brings the networks up.
func (s *Store) Close() error {
	if s.cfg.Resolver == nil {
		return nil
	}
	s.mu.Lock()
	var gws []net.IP
	for _, r := range s.nets {
		if !r.Builtin && r.Gateway != "" {
			gws = append(gws, net.ParseIP(r.Gateway))
		}
	}
	s.mu.Unlock()
	for _, gw := range gws {
		s.cfg.Resolver.Stop(gw)
	}
	return nil
}

func (s *Store) removeLocked(r *netRecord) error {
	if s.cfg.Fabric != nil {
		if s.cfg.Resolver != nil {
			s.cfg.Resolver.Stop(net.ParseIP(r.Gateway))
		}
		if err := s.cfg.Fabric.DeleteBridge(r.Bridge); err != nil {
			return err
		}
	}
	if err := os.Remove(filepath.Join(s.cfg.Root, r.ID+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	delete(s.nets, r.ID)
	if s.cfg.Fabric != nil {
		return s.applyRules()
	}
	return nil
}

// Prune removes the user-defined networks no container uses that match
// selects (by their creation time and labels; nil selects all).
func (s *Store) Prune(ctx context.Context, match func(created time.Time, labels map[string]string) bool) (network.PruneReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := network.PruneReport{NetworksDeleted: []string{}}
	for _, r := range s.nets {
		if r.Builtin || len(s.leases[r.ID]) > 0 || (match != nil && !match(r.Created, r.Labels)) {
			continue
		}
		if err := s.removeLocked(r); err != nil {
			return rep, err
		}
		rep.NetworksDeleted = append(rep.NetworksDeleted, r.Name)
	}
	sort.Strings(rep.NetworksDeleted)
	return rep, nil
}

// all is every network as inspect shows it, the pre-defined host and
// none included, by name, with no containers (the sandboxes add them).
func (s *Store) all() []network.Inspect {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []network.Inspect
	for _, r := range s.nets {
		out = append(out, inspectRecord(r))
	}
	for _, name := range []string{network.NetworkHost, network.NetworkNone} {
		out = append(out, network.Inspect{Network: network.Network{Name: name, ID: pseudoID(name), Scope: "local",
			Driver: map[string]string{"host": "host", "none": "null"}[name], EnableIPv4: true, IPAM: network.IPAM{Driver: "default", Config: []network.IPAMConfig{}},
			Options: map[string]string{}, Labels: map[string]string{}}, Containers: map[string]network.EndpointResource{}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// inspect is one network as inspect shows it, with no containers.
func (s *Store) inspect(ref string) (network.Inspect, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookup(ref)
	if err != nil {
		return network.Inspect{}, err
	}
	return inspectRecord(r), nil
}

func inspectRecord(r *netRecord) network.Inspect {
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
	return network.Inspect{Network: network.Network{
		Name: r.Name, ID: r.ID, Created: r.Created, Scope: "local", Driver: "bridge", EnableIPv4: true, EnableIPv6: r.Subnet6 != "",
		IPAM:     network.IPAM{Driver: "default", Options: map[string]string{}, Config: ipam},
		Internal: r.Internal, Options: opts, Labels: labels,
	}, Containers: map[string]network.EndpointResource{}}
}

// lease is an address a container holds on a network, with what its
// sandbox needs of the network to wire it.
type lease struct {
	net netInfo
	// addr is the IPv4 address with its subnet's length; addr6 and
	// gateway6 the IPv6 ones on a dual-stack network, zero otherwise.
	addr, addr6 netip.Prefix
	gateway6    string
}

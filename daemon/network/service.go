package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/netns"
)

// Fabric wires bridges and links in lodged's network namespace
// (netns.Fabric does).
type Fabric interface {
	EnsureBridge(netns.Bridge) error
	DeleteBridge(name string) error
	Attach(netns.Endpoint) error
	// Prepare and Configure are Attach in two halves: the link, then
	// its address and routes (a spare namespace is prepared ahead).
	Prepare(netns.Endpoint) error
	Configure(netns.Endpoint) error
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
	// Unpin (and Binder netns's Bind).
	Namespaces Namespaces
	// Spares is how many namespaces linked to the default bridge are
	// kept ready for starts (spares.go); 0 for none. They need a Fabric
	// and a Binder.
	Spares int
	Binder Binder
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

// Networks is the network service: the network definitions (*Store:
// create, remove, list, IPAM, bridges and rules) and the running
// containers' sandboxes (*Sandboxes: attach, connect, ports, settings,
// names), each owning its state and its lock. It adds only what spans
// them: list, inspect and remove, which show or check the endpoints the
// sandboxes hold. It is safe for concurrent use.
//
// It knows containers only by the values the engine hands it (IDs, and
// the names, hostname and links a sandbox keeps for DNS and /etc/hosts):
// it holds no container service and takes no container's lock. Its locks
// are taken after a container's, never before.
//
// The two locks are never held together: the sandboxes call the store
// (through definitions) with their lock released, the store calls no
// sandbox, and Networks' own methods call one after the other. What one
// lock gave is kept consistent with the other by leases: a sandbox leases
// its address on a network from the store before its endpoint exists and
// releases it once the endpoint is gone, and the store removes no network
// that has a lease.
type Networks struct {
	*Store
	*Sandboxes
}

// New loads the networks (creating the default bridge on first use) and
// the sandboxes of the containers that ran when lodged stopped, and sets
// the networks' bridges and rules up again.
func New(cfg Config) (*Networks, error) {
	if cfg.Namespaces == nil {
		cfg.Namespaces = netnsPins{}
		if cfg.Binder == nil {
			cfg.Binder = netnsPins{}
		}
	}
	recs := sandboxRecords(filepath.Join(cfg.Root, "sandboxes"))
	if err := os.MkdirAll(string(recs), 0o700); err != nil {
		return nil, err
	}
	sbs, err := recs.load(cfg.Log)
	if err != nil {
		// Without them, running containers' addresses look free.
		return nil, err
	}
	st, err := loadStore(cfg, leasesOf(sbs))
	if err != nil {
		return nil, err
	}
	sx := &Sandboxes{cfg: cfg, defs: st, records: recs, sandboxes: sbs}
	if cfg.Resolver != nil {
		cfg.Resolver.SetLookup(sx.resolve)
	}
	sx.sweep()
	if cfg.Fabric != nil {
		if err := st.bringUpAll(); err != nil {
			return nil, err
		}
	}
	sx.fill()
	return &Networks{Store: st, Sandboxes: sx}, nil
}

// Close stops making spare namespaces and unpins those made, and stops
// the name servers.
func (n *Networks) Close() error {
	n.Sandboxes.closeSpares()
	return n.Store.Close()
}

// Remove deletes a user-defined network that no running container uses.
// Stopped containers configured for it do not hold it, as in Docker: they
// fail to start until it exists again.
func (n *Networks) Remove(ctx context.Context, ref string) error {
	err := n.Store.remove(ref)
	var busy *inUse
	if errors.As(err, &busy) {
		return errdefs.PermissionDeniedf("error while removing network: network %s has active endpoints (%s)",
			busy.network, strings.Join(n.Sandboxes.names(busy.containers), ", "))
	}
	return err
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

// all is every network as inspect shows it, by name.
func (n *Networks) all() []network.Inspect {
	out := n.Store.all()
	for _, in := range out {
		n.Sandboxes.endpointsOn(in.ID, in.Containers)
	}
	return out
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
	in, err := n.Store.inspect(ref)
	if err != nil {
		return network.Inspect{}, err
	}
	n.Sandboxes.endpointsOn(in.ID, in.Containers)
	return in, nil
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

// pseudoID is a stable ID for the pre-defined networks lodge keeps no
// record of.
func pseudoID(name string) string {
	h := sha256.Sum256([]byte("lodge-network-" + name))
	return hex.EncodeToString(h[:])
}

// emit publishes a network event as Docker words it: the network's name
// and driver, and the container for connect and disconnect.
func emit(p Publisher, action events.Action, netID, netName, containerID string) {
	if p == nil {
		return
	}
	attrs := map[string]string{"name": netName, "type": "bridge"}
	if containerID != "" {
		attrs["container"] = containerID
	}
	p.Publish(events.NetworkEventType, action, netID, attrs)
}

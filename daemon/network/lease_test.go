package network

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/errdefs"
)

// fakeDefs are definitions in memory: networks by name, the leases on
// them, and a check that the sandboxes never call them with their lock
// held.
type fakeDefs struct {
	t  *testing.T
	sx *Sandboxes // whose lock must be free at every call

	mu     sync.Mutex
	nets   map[string]netInfo          // by name
	leases map[string]map[string]lease // by network ID, then container ID
	// afterLease runs once a lease on the network named is granted, as a
	// concurrent API call would between two steps of an attach.
	afterLease func(name string)
}

var _ definitions = (*fakeDefs)(nil)

func newFakeDefs(t *testing.T, names ...string) *fakeDefs {
	f := &fakeDefs{t: t, nets: map[string]netInfo{}, leases: map[string]map[string]lease{}}
	for i, name := range names {
		f.nets[name] = netInfo{ID: strings.Repeat(string(rune('1'+i)), 64), Name: name, Bridge: "br-" + name,
			Gateway: netip.AddrFrom4([4]byte{10, byte(i), 0, 1}).String()}
	}
	return f
}

// unlocked fails the test when the sandboxes' lock is held: the two
// types' locks are never held together.
func (f *fakeDefs) unlocked(call string) {
	f.t.Helper()
	if f.sx.mu.TryLock() {
		f.sx.mu.Unlock()
		return
	}
	f.t.Errorf("definitions.%s called with the sandboxes' lock held", call)
}

func (f *fakeDefs) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.nets, name)
}

func (f *fakeDefs) byRef(ref string) (netInfo, bool) {
	for _, r := range f.nets {
		if r.Name == ref || r.ID == ref {
			return r, true
		}
	}
	return netInfo{}, false
}

func (f *fakeDefs) find(ref string) (netInfo, error) {
	f.unlocked("find")
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.byRef(ref); ok {
		return r, nil
	}
	return netInfo{}, errdefs.NotFoundf("network %s not found", ref)
}

func (f *fakeDefs) byID(id string) (netInfo, bool) {
	f.unlocked("byID")
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byRef(id)
}

func (f *fakeDefs) atGateway(gw string) string {
	f.unlocked("atGateway")
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.nets {
		if r.Gateway == gw {
			return r.ID
		}
	}
	return ""
}

func (f *fakeDefs) lease(ref, id string, want4, want6 netip.Addr) (lease, error) {
	f.unlocked("lease")
	f.mu.Lock()
	r, ok := f.byRef(ref)
	if !ok {
		f.mu.Unlock()
		return lease{}, errdefs.NotFoundf("network %s not found", ref)
	}
	if f.leases[r.ID] == nil {
		f.leases[r.ID] = map[string]lease{}
	}
	gw := netip.MustParseAddr(r.Gateway).As4()
	gw[3] += byte(1 + len(f.leases[r.ID]))
	l := lease{net: r, addr: netip.PrefixFrom(netip.AddrFrom4(gw), 24)}
	f.leases[r.ID][id] = l
	after := f.afterLease
	f.mu.Unlock()
	if after != nil {
		after(r.Name)
	}
	return l, nil
}

func (f *fakeDefs) release(networkID, id string) {
	f.unlocked("release")
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.leases[networkID], id)
	if len(f.leases[networkID]) == 0 {
		delete(f.leases, networkID)
	}
}

func (f *fakeDefs) held() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.leases {
		n += len(m)
	}
	return n
}

// fakeSandboxes are sandboxes over fake definitions of the networks
// named and the fakes of fakeService.
func fakeSandboxes(t *testing.T, names ...string) (*Sandboxes, *fakeDefs, *fakes) {
	t.Helper()
	fk := newFakes()
	root := t.TempDir()
	recs := sandboxRecords(filepath.Join(root, "sandboxes"))
	if err := os.MkdirAll(string(recs), 0o700); err != nil {
		t.Fatal(err)
	}
	defs := newFakeDefs(t, names...)
	sx := &Sandboxes{cfg: Config{Root: root, RunDir: root, Fabric: fk.fabric, Namespaces: fk.pins, Ports: fk.ports,
		Resolver: fk.names, Log: slog.New(slog.DiscardHandler)},
		defs: defs, records: recs, sandboxes: map[string]*sandbox{}}
	defs.sx = sx
	return sx, defs, fk
}

// TestAttachToNetworkRemovedMeanwhile: a network removed between the two
// joins of a start (docker network rm while the container starts) fails
// the start with not found, and the start gives back what it took: the
// lease on the first network, the namespace, the ports, the record.
func TestAttachToNetworkRemovedMeanwhile(t *testing.T) {
	ctx := context.Background()
	sx, defs, fk := fakeSandboxes(t, "front", "back")
	defs.afterLease = func(name string) {
		if name == "front" {
			defs.remove("back")
		}
	}
	id := strings.Repeat("a", 64)
	sp := webSpec(id)
	sp.Endpoints["back"] = &network.EndpointSettings{}
	_, err := sx.Attach(ctx, sp)
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("attach with its second network gone: %v, want not found", err)
	}
	if fk.trace.index("link eth0") < 0 {
		t.Fatalf("the first network was never joined, so nothing was tested: %s", fk.trace)
	}
	if got := defs.held(); got != 0 {
		t.Errorf("%d leases left: %v", got, defs.leases)
	}
	if got := fk.pins.count(); got != 0 {
		t.Errorf("%d namespaces left pinned", got)
	}
	if got := fk.ports.count(); got != 0 {
		t.Errorf("%d forwards left held", got)
	}
	if p := sx.NSPath(id); p != "" {
		t.Errorf("the sandbox is still known: %s", p)
	}
	if _, err := os.Stat(sx.records.path(id)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the sandbox record is still on disk: %v", err)
	}
}

// TestSandboxesCallDefinitionsUnlocked: through a container's whole
// life (start, inspect, /etc files, DNS, connect, disconnect, stop) the
// sandboxes call the definitions with their own lock released (the fake
// fails the test otherwise), and hold leases exactly while endpoints
// exist.
func TestSandboxesCallDefinitionsUnlocked(t *testing.T) {
	ctx := context.Background()
	sx, defs, _ := fakeSandboxes(t, "front", "back")
	id := strings.Repeat("b", 64)
	if _, err := sx.Attach(ctx, webSpec(id)); err != nil {
		t.Fatal(err)
	}
	if got := defs.held(); got != 1 {
		t.Errorf("leases after the start: %d, want 1", got)
	}
	ns := sx.Settings(webSpec(id))
	if got := ns.Networks["front"].IPAddress.String(); got != "10.0.0.2" {
		t.Errorf("settings: address %s, want the leased 10.0.0.2", got)
	}
	if etc := sx.Etc(id); etc.Nameserver != "10.0.0.1" || !strings.Contains(etc.Hosts, "10.0.0.2\twebhost") {
		t.Errorf("etc: %+v", etc)
	}
	if got := sx.resolve(net.ParseIP("10.0.0.1"), nil, "www"); len(got) != 1 || got[0].String() != "10.0.0.2" {
		t.Errorf("resolve www: %v", got)
	}
	back, _ := defs.find("back")
	ref := NetRef{ID: back.ID, Name: back.Name}
	if err := sx.Join(id, ref, nil); err != nil {
		t.Fatal(err)
	}
	if got := defs.held(); got != 2 {
		t.Errorf("leases after a connect: %d, want 2", got)
	}
	sx.Leave(id, ref)
	if got := defs.held(); got != 1 || sx.OnNetwork(id, back.ID) {
		t.Errorf("after a disconnect: %d leases (want 1), on back: %v", got, sx.OnNetwork(id, back.ID))
	}
	sx.Detach(ctx, id)
	if got := defs.held(); got != 0 {
		t.Errorf("leases after the stop: %d, want 0", got)
	}
}

// TestRemoveRefusesALeasedNetwork: the store removes no network a
// container holds an address on, whether its endpoint is recorded (a
// running container, named in the refusal) or not yet (a join between
// its lease and its record); once released, the network goes.
func TestRemoveRefusesALeasedNetwork(t *testing.T) {
	ctx := context.Background()
	n, _ := fakeService(t)
	id := strings.Repeat("c", 64)
	if _, err := n.Attach(ctx, webSpec(id)); err != nil {
		t.Fatal(err)
	}
	err := n.Remove(ctx, "front")
	if !errors.Is(err, errdefs.ErrPermissionDenied) || !strings.Contains(err.Error(), "active endpoints (web)") {
		t.Fatalf("remove of a network a running container is on: %v", err)
	}
	n.Detach(ctx, id)
	other := strings.Repeat("9", 64)
	if _, err := n.Store.lease("front", other, netip.Addr{}, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	err = n.Remove(ctx, "front")
	if !errors.Is(err, errdefs.ErrPermissionDenied) || !strings.Contains(err.Error(), other[:12]) {
		t.Fatalf("remove of a network a join has leased on: %v", err)
	}
	if rep, err := n.Prune(ctx, nil); err != nil || len(rep.NetworksDeleted) != 0 {
		t.Errorf("prune took a leased network: %v %v", rep.NetworksDeleted, err)
	}
	n.Store.release(mustRef(t, n, "front").ID, other)
	if err := n.Remove(ctx, "front"); err != nil {
		t.Fatalf("remove once nothing holds the network: %v", err)
	}
}

// TestLeasesSurviveRestart: a restarted service knows, from the sandbox
// records, which addresses running containers hold and which networks
// they are on: the next start gets another address, and the network
// cannot be removed.
func TestLeasesSurviveRestart(t *testing.T) {
	ctx := context.Background()
	n, _ := fakeService(t)
	id := strings.Repeat("d", 64)
	if _, err := n.Attach(ctx, webSpec(id)); err != nil {
		t.Fatal(err)
	}
	ip := n.Settings(webSpec(id)).Networks["front"].IPAddress
	again, err := New(n.Store.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Remove(ctx, "front"); !errors.Is(err, errdefs.ErrPermissionDenied) {
		t.Errorf("remove after a restart of a network a running container is on: %v", err)
	}
	other := webSpec(strings.Repeat("e", 64))
	other.PortBindings = nil
	if _, err := again.Attach(ctx, other); err != nil {
		t.Fatal(err)
	}
	if got := again.Settings(other).Networks["front"].IPAddress; got == ip {
		t.Errorf("after a restart, a new start got %s, the address a running container holds", got)
	}
}

func mustRef(t *testing.T, n *Networks, ref string) NetRef {
	t.Helper()
	r, err := n.Ref(ref)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

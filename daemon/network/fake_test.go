package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/netns"
)

// trace is the order in which the fakes were called, shared by them: a
// nil trace records nothing.
type trace struct {
	mu    sync.Mutex
	steps []string
}

func (tr *trace) add(step string) {
	if tr == nil {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.steps = append(tr.steps, step)
}

// index is where step was first recorded, -1 if never.
func (tr *trace) index(step string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Index(tr.steps, step)
}

func (tr *trace) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return strings.Join(tr.steps, ", ")
}

// fakeFabric is a Fabric that keeps what it is asked for in memory, and
// fails Attach while failAttach is set.
type fakeFabric struct {
	mu         sync.Mutex
	bridges    map[string]bool
	links      map[string]netns.Endpoint // by host end
	failAttach bool
	trace      *trace
}

var _ Fabric = (*fakeFabric)(nil)

func newFakeFabric() *fakeFabric {
	return &fakeFabric{bridges: map[string]bool{}, links: map[string]netns.Endpoint{}}
}

func (f *fakeFabric) EnsureBridge(b netns.Bridge) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bridges[b.Name] = true
	return nil
}

func (f *fakeFabric) DeleteBridge(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.bridges, name)
	return nil
}

func (f *fakeFabric) Attach(e netns.Endpoint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAttach {
		return errors.New("fake: no link today")
	}
	f.trace.add("link " + e.IfName)
	f.links[e.HostIf] = e
	return nil
}

func (f *fakeFabric) Prepare(e netns.Endpoint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trace.add("prepare " + e.IfName)
	f.links[e.HostIf] = e
	return nil
}

func (f *fakeFabric) Configure(e netns.Endpoint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAttach {
		return errors.New("fake: no link today")
	}
	if _, ok := f.links[e.HostIf]; !ok {
		return errors.New("fake: configure of a link never prepared: " + e.HostIf)
	}
	f.trace.add("configure " + e.IfName)
	f.links[e.HostIf] = e
	return nil
}

func (f *fakeFabric) Detach(hostIf string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.links, hostIf)
	return nil
}

func (f *fakeFabric) ApplyRules([]netns.RoutedNet) error { return nil }

// fakePins are Namespaces that pin nothing but remember what is pinned.
type fakePins struct {
	mu      sync.Mutex
	pinned  map[string]bool
	failPin bool
	trace   *trace
}

var (
	_ Namespaces = (*fakePins)(nil)
	_ Binder     = (*fakePins)(nil)
)

// Pin replaces a pin left on path, as netns.Pin does; it fails while
// failPin is set.
func (p *fakePins) Pin(path string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failPin {
		return errors.New("fake: no namespace today")
	}
	p.trace.add("pin")
	p.pinned[path] = true
	return nil
}

func (p *fakePins) Bind(from, to string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.pinned[from] {
		return errors.New("fake: bind of a path not pinned: " + from)
	}
	p.trace.add("bind")
	p.pinned[to] = true
	return nil
}

func (p *fakePins) isPinned(path string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pinned[path]
}

func (p *fakePins) Unpin(path string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trace.add("unpin")
	delete(p.pinned, path)
	return nil
}

func (p *fakePins) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pinned)
}

// fakePorts is a PortPublisher that keeps the forwards it holds, and
// fails to publish the container ports in fail.
type fakePorts struct {
	mu    sync.Mutex
	held  map[netns.Forward]bool
	fail  map[int]bool // by container port
	trace *trace
}

var _ PortPublisher = (*fakePorts)(nil)

func (p *fakePorts) Publish(ctx context.Context, f netns.Forward) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail[f.Port] {
		return errors.New("fake: the port driver said no")
	}
	p.trace.add(fmt.Sprintf("publish %d", f.HostPort))
	p.held[f] = true
	return nil
}

func (p *fakePorts) Unpublish(ctx context.Context, fs []netns.Forward) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range fs {
		p.trace.add(fmt.Sprintf("unpublish %d", f.HostPort))
		delete(p.held, f)
	}
	return nil
}

func (p *fakePorts) Ensure(ctx context.Context, fs []netns.Forward) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range fs {
		p.held[f] = true
	}
	return nil
}

func (p *fakePorts) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.held)
}

// fakeNames is a NameServer: it keeps the gateways it serves, and asks
// the lookup the service gave it, as a DNS query would.
type fakeNames struct {
	mu      sync.Mutex
	serving map[string]bool
	lookup  func(gateway, client net.IP, name string) []net.IP
}

var _ NameServer = (*fakeNames)(nil)

func (f *fakeNames) Serve(gateway net.IP) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.serving[gateway.String()] = true
	return nil
}

func (f *fakeNames) Stop(gateway net.IP) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.serving, gateway.String())
}

func (f *fakeNames) SetLookup(l func(gateway, client net.IP, name string) []net.IP) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookup = l
}

func (f *fakeNames) isServing(gateway string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.serving[gateway]
}

// ask is a query for name to the name server on gateway, as addresses.
func (f *fakeNames) ask(gateway, name string) []string {
	f.mu.Lock()
	serving, lookup := f.serving[gateway], f.lookup
	f.mu.Unlock()
	if !serving || lookup == nil {
		return nil
	}
	var out []string
	for _, a := range lookup(net.ParseIP(gateway), nil, name) {
		out = append(out, a.String())
	}
	return out
}

// fakes are a network service's collaborators, all faked, recording
// into one trace.
type fakes struct {
	fabric *fakeFabric
	pins   *fakePins
	ports  *fakePorts
	names  *fakeNames
	trace  *trace
}

// newFakes are fresh fakes recording into one trace.
func newFakes() *fakes {
	tr := &trace{}
	fk := &fakes{fabric: newFakeFabric(), trace: tr,
		pins:  &fakePins{pinned: map[string]bool{}, trace: tr},
		ports: &fakePorts{held: map[netns.Forward]bool{}, fail: map[int]bool{}, trace: tr},
		names: &fakeNames{serving: map[string]bool{}}}
	fk.fabric.trace = tr
	return fk
}

// fakeService is a network service over fakes only, with a user-defined
// network "front".
func fakeService(t *testing.T) (*Networks, *fakes) {
	t.Helper()
	fk := newFakes()
	root := t.TempDir()
	n, err := New(Config{Root: root, RunDir: root, Fabric: fk.fabric, Namespaces: fk.pins, Ports: fk.ports, Resolver: fk.names,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Create(context.Background(), network.CreateRequest{Name: "front"}); err != nil {
		t.Fatal(err)
	}
	return n, fk
}

// fakeNetworks is a network service over a fake fabric, with a
// user-defined network "front" and container id's sandbox (as a start
// would have made it, with no endpoint yet).
func fakeNetworks(t *testing.T, id, name string) (*Networks, *fakeFabric, NetRef) {
	t.Helper()
	root := t.TempDir()
	fab := newFakeFabric()
	n, err := New(Config{Root: root, RunDir: root, Fabric: fab, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Create(context.Background(), network.CreateRequest{Name: "front"}); err != nil {
		t.Fatal(err)
	}
	ref, err := n.Ref("front")
	if err != nil {
		t.Fatal(err)
	}
	n.Sandboxes.mu.Lock()
	n.sandboxes[id] = &sandbox{ContainerID: id, NSPath: filepath.Join(root, "ns"), Name: name, Hostname: id[:12]}
	n.Sandboxes.mu.Unlock()
	return n, fab, ref
}

// TestJoinLeavesNothingOnError: a connect whose link fails leaves no
// endpoint, no address taken, no record of it and no link behind.
func TestJoinLeavesNothingOnError(t *testing.T) {
	id := strings.Repeat("a", 64)
	n, fab, ref := fakeNetworks(t, id, "web")
	fab.failAttach = true
	if err := n.Join(id, ref, nil); err == nil {
		t.Fatal("a join whose link failed succeeded")
	}
	if n.OnNetwork(id, ref.ID) {
		t.Error("the failed join left an endpoint")
	}
	if b, err := os.ReadFile(n.records.path(id)); err == nil && strings.Contains(string(b), ref.ID) {
		t.Errorf("the failed join is in the sandbox record: %s", b)
	}
	if len(fab.links) != 0 {
		t.Errorf("links left: %v", fab.links)
	}
	// The address it took is free again: the next join gets it.
	fab.failAttach = false
	if err := n.Join(id, ref, nil); err != nil {
		t.Fatal(err)
	}
	got := n.sandboxFor(id).Endpoints
	if len(got) != 1 || got[0].IP != "172.18.0.2" {
		t.Errorf("endpoints after a good join: %+v", got)
	}
}

// TestDNSAnswersTheNamesTheEngineGave: the name server answers a
// container's name, hostname and ID prefix from the sandbox's values, and
// a rename (SetNames) moves the name.
func TestDNSAnswersTheNamesTheEngineGave(t *testing.T) {
	id := strings.Repeat("b", 64)
	n, _, ref := fakeNetworks(t, id, "web")
	if err := n.Join(id, ref, &network.EndpointSettings{Aliases: []string{"www"}}); err != nil {
		t.Fatal(err)
	}
	gw := net.ParseIP(n.sandboxFor(id).Endpoints[0].Gateway)
	ip := n.sandboxFor(id).Endpoints[0].IP
	for _, name := range []string{"web", "WEB", "www", id[:12], id} {
		if got := n.resolve(gw, nil, name); len(got) != 1 || got[0].String() != ip {
			t.Errorf("resolve %q = %v, want %s", name, got, ip)
		}
	}
	n.SetNames(id, "api", id[:12], nil)
	if got := n.resolve(gw, nil, "web"); len(got) != 0 {
		t.Errorf("the old name still answers after a rename: %v", got)
	}
	if got := n.resolve(gw, nil, "api"); !slices.ContainsFunc(got, func(a net.IP) bool { return a.String() == ip }) {
		t.Errorf("the new name does not answer: %v", got)
	}
	if in, err := n.Inspect(context.Background(), "front"); err != nil || in.Containers[id].Name != "api" {
		t.Errorf("inspect after a rename: %+v %v", in.Containers, err)
	}
}

package network

import (
	"context"
	"errors"
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

// fakeFabric is a Fabric that keeps what it is asked for in memory, and
// fails Attach while failAttach is set.
type fakeFabric struct {
	mu         sync.Mutex
	bridges    map[string]bool
	links      map[string]netns.Endpoint // by host end
	failAttach bool
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
	n.mu.Lock()
	n.sandboxes[id] = &sandbox{ContainerID: id, NSPath: filepath.Join(root, "ns"), Name: name, Hostname: id[:12]}
	n.mu.Unlock()
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
	if b, err := os.ReadFile(n.sandboxPath(id)); err == nil && strings.Contains(string(b), ref.ID) {
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

package network

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"
)

// webSpec is a container "web" on network "front", publishing 80 and 81
// on host ports 8080 and 8081.
func webSpec(id string) Spec {
	return Spec{ID: id, Name: "web", Hostname: "webhost", Mode: "front",
		Endpoints: map[string]*network.EndpointSettings{"front": {Aliases: []string{"www"}}},
		PortBindings: network.PortMap{
			network.MustParsePort("80/tcp"): {{HostPort: "8080"}},
			network.MustParsePort("81/tcp"): {{HostPort: "8081"}},
		}}
}

// gateway is the gateway of the network ref names.
func gateway(t *testing.T, n *Networks, ref string) string {
	t.Helper()
	in, err := n.Inspect(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return in.IPAM.Config[0].Gateway.String()
}

// TestAttachLeavesNothingOnError: a start whose second port fails to
// publish, after its address, DNS names, link, first port and sandbox
// record exist, gives all of them back: the next start gets the same
// address, no name answers, no port or namespace stays held.
func TestAttachLeavesNothingOnError(t *testing.T) {
	ctx := context.Background()
	n, fk := fakeService(t)
	id := strings.Repeat("d", 64)
	fk.ports.fail[81] = true
	if _, err := n.Attach(ctx, webSpec(id)); err == nil {
		t.Fatal("an attach whose port failed succeeded")
	}
	if fk.trace.index("publish 8080") < 0 {
		t.Fatalf("the first port was never published, so nothing was tested: %s", fk.trace)
	}
	if got := fk.ports.count(); got != 0 {
		t.Errorf("%d forwards left held", got)
	}
	if got := fk.pins.count(); got != 0 {
		t.Errorf("%d namespaces left pinned", got)
	}
	if p := n.NSPath(id); p != "" {
		t.Errorf("the sandbox is still known: %s", p)
	}
	if _, err := os.Stat(n.records.path(id)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the sandbox record is still on disk: %v", err)
	}
	gw := gateway(t, n, "front")
	for _, name := range []string{"web", "www", "webhost", id[:12]} {
		if got := fk.names.ask(gw, name); len(got) != 0 {
			t.Errorf("%s still answers %v", name, got)
		}
	}
	if in, _ := n.Inspect(ctx, "front"); len(in.Containers) != 0 {
		t.Errorf("the network still lists the container: %+v", in.Containers)
	}
	// The address went back: the next start takes it again.
	fk.ports.fail = map[int]bool{}
	if _, err := n.Attach(ctx, webSpec(id)); err != nil {
		t.Fatal(err)
	}
	ns := n.Settings(webSpec(id))
	if got := ns.Networks["front"].IPAddress.String(); got != "172.18.0.2" {
		t.Errorf("address after a failed start: %s, want 172.18.0.2", got)
	}
	if got := fk.ports.count(); got != 2 {
		t.Errorf("forwards after a good start: %d, want 2", got)
	}
}

// TestSandboxOrdering: ports are published only once the namespace is
// pinned and its link is up, and unpublished before the namespace goes;
// the container's names answer from the start to the stop only.
func TestSandboxOrdering(t *testing.T) {
	ctx := context.Background()
	n, fk := fakeService(t)
	id := strings.Repeat("e", 64)
	if _, err := n.Attach(ctx, webSpec(id)); err != nil {
		t.Fatal(err)
	}
	tr := fk.trace
	pin, link, pub := tr.index("pin"), tr.index("link eth0"), tr.index("publish 8080")
	if pin < 0 || link < 0 || pub < 0 || !(pin < link && link < pub) {
		t.Errorf("start: want pin, link, publish in that order: %s", tr)
	}
	gw := gateway(t, n, "front")
	ip := n.Settings(webSpec(id)).Networks["front"].IPAddress.String()
	for _, name := range []string{"web", "www", "webhost", id[:12]} {
		if got := fk.names.ask(gw, name); !slices.Equal(got, []string{ip}) {
			t.Errorf("running: %s answers %v, want %s", name, got, ip)
		}
	}
	n.Detach(ctx, id)
	unpub, unpin := tr.index("unpublish 8080"), tr.index("unpin")
	if unpub < 0 || unpin < 0 || unpub > unpin {
		t.Errorf("stop: want the ports unpublished before the namespace goes: %s", tr)
	}
	if fk.ports.count() != 0 || fk.pins.count() != 0 {
		t.Errorf("after the stop: %d forwards, %d namespaces held", fk.ports.count(), fk.pins.count())
	}
	if got := fk.names.ask(gw, "web"); len(got) != 0 {
		t.Errorf("stopped: web answers %v", got)
	}
}

// TestConnectNames: a connect makes the container's names and its
// aliases there answer on that network, a disconnect takes them away
// there only; a network's name server runs from its create to its
// remove.
func TestConnectNames(t *testing.T) {
	ctx := context.Background()
	n, fk := fakeService(t)
	if _, err := n.Create(ctx, network.CreateRequest{Name: "back"}); err != nil {
		t.Fatal(err)
	}
	front, back := gateway(t, n, "front"), gateway(t, n, "back")
	if !fk.names.isServing(back) {
		t.Fatalf("no name server on the new network's gateway %s: %v", back, fk.names.serving)
	}
	id := strings.Repeat("f", 64)
	if _, err := n.Attach(ctx, webSpec(id)); err != nil {
		t.Fatal(err)
	}
	ref, err := n.Ref("back")
	if err != nil {
		t.Fatal(err)
	}
	if got := fk.names.ask(back, "web"); len(got) != 0 {
		t.Fatalf("web answers on back before the connect: %v", got)
	}
	if err := n.Join(id, ref, &network.EndpointSettings{Aliases: []string{"api"}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web", "api"} {
		if got := fk.names.ask(back, name); len(got) != 1 || !strings.HasPrefix(got[0], strings.TrimSuffix(back, "1")) {
			t.Errorf("connected: %s answers %v on back (%s)", name, got, back)
		}
	}
	if got := fk.names.ask(front, "api"); len(got) != 0 {
		t.Errorf("an alias on back answers on front: %v", got)
	}
	n.Leave(id, ref)
	for _, name := range []string{"web", "api"} {
		if got := fk.names.ask(back, name); len(got) != 0 {
			t.Errorf("disconnected: %s still answers %v on back", name, got)
		}
	}
	if got := fk.names.ask(front, "web"); len(got) != 1 {
		t.Errorf("the disconnect from back took web from front too: %v", got)
	}
	n.Detach(ctx, id)
	if err := n.Remove(ctx, "back"); err != nil {
		t.Fatal(err)
	}
	if fk.names.isServing(back) {
		t.Errorf("the removed network's name server still runs on %s", back)
	}
}

// Close stops every name server the service started, and a service
// made again over the same records serves them again: the daemon's
// shutdown leaves no DNS goroutine behind, and its restart loses no name.
func TestCloseStopsNameServers(t *testing.T) {
	ctx := context.Background()
	n, fk := fakeService(t)
	if _, err := n.Create(ctx, network.CreateRequest{Name: "back"}); err != nil {
		t.Fatal(err)
	}
	gws := []string{gateway(t, n, "front"), gateway(t, n, "back")}
	for _, gw := range gws {
		if !fk.names.isServing(gw) {
			t.Fatalf("no name server on %s before Close: %v", gw, fk.names.serving)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for _, gw := range gws {
		if fk.names.isServing(gw) {
			t.Errorf("a name server on %s outlives Close", gw)
		}
	}
	again, err := New(n.Store.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, gw := range gws {
		if !fk.names.isServing(gw) {
			t.Errorf("the next service does not serve names on %s", gw)
		}
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
}

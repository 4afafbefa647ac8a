package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	netsvc "github.com/lodge-containers/lodge/daemon/network"
	"github.com/lodge-containers/lodge/errdefs"
)

// fakeConnector is the network service as connect and disconnect use it:
// networks by name, the sandboxes of running containers, and what was
// joined and left. A call the glue should not make panics (the embedded
// interface is nil).
type fakeConnector struct {
	NetworkService
	nets    map[string]netsvc.NetRef
	sandbox map[string]string // container ID -> pinned namespace
	joined  []string          // "id/networkID"
	left    []string
	joinErr error
}

func (f *fakeConnector) Ref(ref string) (netsvc.NetRef, error) {
	if r, ok := f.nets[ref]; ok {
		return r, nil
	}
	return netsvc.NetRef{}, errdefs.NotFoundf("network %s not found", ref)
}

func (f *fakeConnector) NSPath(id string) string { return f.sandbox[id] }

func (f *fakeConnector) OnNetwork(id, networkID string) bool {
	return slices.Contains(f.joined, id+"/"+networkID)
}

func (f *fakeConnector) Join(id string, r netsvc.NetRef, _ *network.EndpointSettings) error {
	if f.joinErr != nil {
		return f.joinErr
	}
	f.joined = append(f.joined, id+"/"+r.ID)
	return nil
}

func (f *fakeConnector) Leave(id string, r netsvc.NetRef) { f.left = append(f.left, id+"/"+r.ID) }

// endpointsOnDisk are the networks container.json records for c, which is
// what a restarted lodged (and the next start) goes by.
func endpointsOnDisk(t *testing.T, recs *store, id string) (names []string, primaryDisconnected bool) {
	t.Helper()
	c, err := loadContainer(filepath.Join(recs.dir(id), "container.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c.NetworkingConfig != nil {
		for n := range c.NetworkingConfig.EndpointsConfig {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, c.PrimaryDisconnected
}

// TestConnectDisconnectRecord: docker network connect and disconnect
// change the container's record on disk as well as its sandbox; a join
// the network service refuses leaves the record as it was; connecting
// twice, or disconnecting a network it is not on, is Docker's 403.
func TestConnectDisconnectRecord(t *testing.T) {
	f := &fakeConnector{nets: map[string]netsvc.NetRef{
		"front":  {ID: "f0f0", Name: "front"},
		"back":   {ID: "b0b0", Name: "back"},
		"bridge": {ID: "dddd", Name: "bridge"},
	}, sandbox: map[string]string{}}
	recs := newStore(t.TempDir(), t.TempDir(), slog.New(slog.DiscardHandler))
	g := &netGlue{nw: f, recs: recs}
	c := &Container{ID: strings.Repeat("a", 64), Name: "web", Config: &container.Config{}, HostConfig: &container.HostConfig{},
		State: ContainerState{Status: container.StateExited}}
	if err := os.MkdirAll(recs.dir(c.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	recs.add(c)
	ctx := context.Background()

	// Stopped: only the record changes.
	if err := g.Connect(ctx, "front", "web", nil); err != nil {
		t.Fatal(err)
	}
	if len(f.joined) != 0 {
		t.Errorf("a stopped container's sandbox was joined: %v", f.joined)
	}
	if got, _ := endpointsOnDisk(t, recs, c.ID); !slices.Equal(got, []string{"front"}) {
		t.Errorf("record on disk has networks %v after connect, want [front]", got)
	}
	if err := g.Connect(ctx, "front", "web", nil); !errors.Is(err, errdefs.ErrPermissionDenied) {
		t.Errorf("second connect: %v, want permission denied", err)
	}

	// Running: the sandbox joins first; a refused join changes nothing.
	c.State.Status = container.StateRunning
	f.sandbox[c.ID] = "/run/netns/web"
	f.joinErr = errors.New("no address left")
	if err := g.Connect(ctx, "back", "web", nil); err == nil || !strings.Contains(err.Error(), "no address left") {
		t.Errorf("connect with a failing join: %v", err)
	}
	if _, ok := c.NetworkingConfig.EndpointsConfig["back"]; ok {
		t.Error("a refused join left the network in the record")
	}
	if got, _ := endpointsOnDisk(t, recs, c.ID); !slices.Equal(got, []string{"front"}) {
		t.Errorf("record on disk has networks %v after a refused join, want [front]", got)
	}
	f.joinErr = nil
	if err := g.Connect(ctx, "back", "web", nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.joined, []string{c.ID + "/b0b0"}) {
		t.Errorf("joined %v, want the running container on back", f.joined)
	}

	if err := g.Disconnect(ctx, "front", "web", false); err != nil {
		t.Fatal(err)
	}
	if got, _ := endpointsOnDisk(t, recs, c.ID); !slices.Equal(got, []string{"back"}) {
		t.Errorf("record on disk has networks %v after disconnect, want [back]", got)
	}
	if !slices.Equal(f.left, []string{c.ID + "/f0f0"}) {
		t.Errorf("left %v, want front", f.left)
	}
	if err := g.Disconnect(ctx, "front", "web", false); !errors.Is(err, errdefs.ErrPermissionDenied) {
		t.Errorf("second disconnect: %v, want permission denied", err)
	}
	// The network the mode names is left by a flag, as compose needs.
	if err := g.Disconnect(ctx, "bridge", "web", false); err != nil {
		t.Fatal(err)
	}
	if _, pd := endpointsOnDisk(t, recs, c.ID); !pd {
		t.Error("disconnecting the default bridge is not recorded")
	}
}

// TestStoreNames: a create reserves its name before its layer is made, a
// failed create gives it back, and a rename moves it, refusing a name in
// use with Docker's messages; the record on disk follows.
func TestStoreNames(t *testing.T) {
	recs := newStore(t.TempDir(), t.TempDir(), slog.New(slog.DiscardHandler))
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	if _, err := recs.reserve("web", a); err != nil {
		t.Fatal(err)
	}
	if _, err := recs.reserve("web", b); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), a) {
		t.Errorf("second reserve of a name: %v, want a conflict naming %s", err, a)
	}
	recs.release("web")
	if _, err := recs.reserve("web", b); err != nil {
		t.Errorf("a released name cannot be reserved: %v", err)
	}
	recs.release("web")
	if n, err := recs.reserve("", a); err != nil || !strings.Contains(n, "_") {
		t.Errorf("random name %q, %v", n, err)
	}

	mk := func(id, name string) *Container {
		c := &Container{ID: id, Name: name, Config: &container.Config{}, HostConfig: &container.HostConfig{}}
		if err := os.MkdirAll(recs.dir(id), 0o700); err != nil {
			t.Fatal(err)
		}
		recs.add(c)
		return c
	}
	ca, cb := mk(a, "one"), mk(b, "two")
	noop := func(*Container, string) {}
	if err := recs.rename(ca, "two", noop); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("rename onto a taken name: %v, want a conflict", err)
	}
	if err := recs.rename(ca, "one", noop); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("rename to its own name: %v, want invalid argument", err)
	}
	told := ""
	if err := recs.rename(ca, "three", func(c *Container, _ string) { told = c.Name }); err != nil {
		t.Fatal(err)
	}
	if told != "three" {
		t.Errorf("the rename hook saw %q", told)
	}
	if got, err := recs.get("three"); err != nil || got != ca {
		t.Errorf("get(three) = %v, %v", got, err)
	}
	if _, err := recs.get("one"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the old name still finds the container: %v", err)
	}
	if _, err := recs.reserve("one", b); err != nil {
		t.Errorf("the old name is not free after a rename: %v", err)
	}
	recs.release("one")
	disk, err := loadContainer(filepath.Join(recs.dir(a), "container.json"))
	if err != nil || disk.Name != "three" {
		t.Errorf("record on disk after rename: %+v, %v", disk, err)
	}
	recs.delete(cb)
	if _, err := recs.reserve("two", a); err != nil {
		t.Errorf("a removed container's name is still taken: %v", err)
	}
}

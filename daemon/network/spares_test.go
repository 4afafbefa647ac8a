package network

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// sparesService is a network service over fakes keeping one spare
// namespace, with the filler's first spare made.
func sparesService(t *testing.T, root string) (*Networks, *fakes) {
	t.Helper()
	fk := newFakes()
	n, err := New(Config{Root: root, RunDir: root, Fabric: fk.fabric, Namespaces: fk.pins, Binder: fk.pins, Ports: fk.ports,
		Spares: 1, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	n.fillers.Wait()
	return n, fk
}

// TestSpareTakenAndMadeAgain: a start on the default bridge takes the
// spare namespace (bound on the container's own path, its link only
// configured), the filler makes a new one on the same slot, the stop
// leaves just that one held, and Close leaves nothing.
func TestSpareTakenAndMadeAgain(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	n, fk := sparesService(t, root)
	slot := filepath.Join(root, "netns", "spare-0")
	if !fk.pins.isPinned(slot) || len(n.spares) != 1 {
		t.Fatalf("no spare made at start: %s", fk.trace)
	}
	spareIf := n.spares[0].hostIf
	id := strings.Repeat("e", 64)
	ns, err := n.Attach(ctx, Spec{ID: id, Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "netns", id); ns != want {
		t.Errorf("namespace path %s, want the container's own %s", ns, want)
	}
	if fk.trace.index("bind") < 0 || fk.trace.index("configure eth0") < 0 || fk.trace.index("link eth0") >= 0 {
		t.Fatalf("the start did not take the spare: %s", fk.trace)
	}
	eps := n.sandboxFor(id).Endpoints
	if len(eps) != 1 || eps[0].HostIf != spareIf || eps[0].IP != "172.17.0.2" || eps[0].MAC != "02:42:ac:11:00:02" {
		t.Errorf("endpoint %+v, want the spare's link %s with the first address and its MAC", eps, spareIf)
	}
	n.fillers.Wait()
	if len(n.spares) != 1 || n.spares[0].path != slot || n.spares[0].hostIf == spareIf {
		t.Errorf("spares after the take: %+v", n.spares)
	}
	n.Detach(ctx, id)
	if got := fk.pins.count(); got != 1 {
		t.Errorf("after the stop %d namespaces held, want the spare only", got)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fk.pins.count(); got != 0 {
		t.Errorf("after Close %d namespaces held", got)
	}
}

// TestTakenSlotReleasedWithoutANewSpare: when no new spare can be made,
// the slot of the one a start took still lets go of the container's
// namespace, so that the stop ends it (its address on the bridge with
// it).
func TestTakenSlotReleasedWithoutANewSpare(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	n, fk := sparesService(t, root)
	defer n.Close()
	fk.pins.mu.Lock()
	fk.pins.failPin = true
	fk.pins.mu.Unlock()
	id := strings.Repeat("a", 64)
	if _, err := n.Attach(ctx, Spec{ID: id, Name: "c"}); err != nil {
		t.Fatal(err)
	}
	n.fillers.Wait()
	fk.pins.mu.Lock()
	fk.pins.failPin = false
	fk.pins.mu.Unlock()
	if fk.trace.index("bind") < 0 {
		t.Fatalf("the start did not take the spare: %s", fk.trace)
	}
	if slot := filepath.Join(root, "netns", "spare-0"); fk.pins.isPinned(slot) {
		t.Error("the taken slot still holds the container's namespace")
	}
	n.Detach(ctx, id)
	if got := fk.pins.count(); got != 0 {
		t.Errorf("after the stop %d namespaces held", got)
	}
}

// TestSweepUnpinsWhatNoRecordNames: what a killed lodged left under
// RunDir/netns (its spares, a container's pin made before its record) is
// unpinned by the next one; a running container's namespace is kept.
func TestSweepUnpinsWhatNoRecordNames(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	n, fk := sparesService(t, root)
	id := strings.Repeat("f", 64)
	ns, err := n.Attach(ctx, Spec{ID: id, Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	n.fillers.Wait()
	// The files the pins would be on, and one pinned before its record.
	left := filepath.Join(root, "netns", strings.Repeat("9", 64))
	if err := os.MkdirAll(filepath.Dir(left), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{ns, left, filepath.Join(root, "netns", "spare-0")} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fk.pins.pinned[left] = true
	// lodged killed: no Close. The next one loads the same records.
	fk2 := newFakes()
	fk2.pins.pinned = fk.pins.pinned
	n2, err := New(Config{Root: root, RunDir: root, Fabric: fk2.fabric, Namespaces: fk2.pins, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	if !fk2.pins.isPinned(ns) {
		t.Error("the running container's namespace was unpinned")
	}
	if fk2.pins.isPinned(left) {
		t.Error("a pin no record names is left")
	}
	if fk2.pins.isPinned(filepath.Join(root, "netns", "spare-0")) {
		t.Error("the killed lodged's spare is left")
	}
}

// TestSparesStayPinnedUnderConcurrentStarts: starts taking spares while
// the filler makes new ones never leave a spare whose slot holds no
// namespace (a take's late release once unpinned the spare made again on
// its slot, and the next start bound an empty path).
func TestSparesStayPinnedUnderConcurrentStarts(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	fk := newFakes()
	n, err := New(Config{Root: root, RunDir: root, Fabric: fk.fabric, Namespaces: fk.pins, Binder: fk.pins, Ports: fk.ports,
		Spares: 2, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for round := 0; round < 50; round++ {
		n.fillers.Wait()
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				id := fmt.Sprintf("%062d%02d", round, i)
				if _, err := n.Attach(ctx, Spec{ID: id, Name: "c" + id}); err != nil {
					t.Errorf("attach: %v", err)
					return
				}
				n.Detach(ctx, id)
			}(i)
		}
		wg.Wait()
		n.fillers.Wait()
		n.Sandboxes.mu.Lock()
		for _, sp := range n.spares {
			if !fk.pins.isPinned(sp.path) {
				t.Errorf("round %d: spare %s holds no namespace", round, sp.path)
			}
		}
		n.Sandboxes.mu.Unlock()
		if t.Failed() {
			return
		}
	}
}

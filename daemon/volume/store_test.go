package volume

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/events"

	"github.com/lodge-containers/lodge/errdefs"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// What a crash leaves (a create or removal cut short) is cleaned up at the
// next start; finished volumes come back with their records.
func TestVolumesRecoverAfterCrash(t *testing.T) {
	root := t.TempDir()
	v, err := New(root, quietLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := v.Create(ctx, Options{Name: "kept", Labels: map[string]string{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "kept", "_data", "f"), []byte("x"), 0o644)
	for _, d := range []string{".new-half", ".rm-gone-12345678/_data", "norecord/_data"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.MkdirAll(filepath.Join(root, "lying", "_data"), 0o755)
	os.WriteFile(filepath.Join(root, "lying", "volume.json"), []byte(`{"Name":"other"}`), 0o600)

	v, err = New(root, quietLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := v.List(ctx, nil)
	if len(list) != 1 || list[0].Name != "kept" || list[0].Labels["a"] != "b" {
		t.Errorf("after a restart: %+v", list)
	}
	for _, gone := range []string{".new-half", ".rm-gone-12345678", "norecord"} {
		if _, err := os.Stat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", gone, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "kept", "_data", "f")); string(b) != "x" {
		t.Errorf("a volume's data after a restart: %q", b)
	}
}

func TestVolumesInUse(t *testing.T) {
	pub := &recorder{}
	v, err := New(t.TempDir(), quietLog(), pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	named, err := v.Acquire("named", Options{}, "c1")
	if err != nil {
		t.Fatal(err)
	}
	anon, err := v.Acquire("", Options{Labels: map[string]string{"k": "v"}}, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v.Inspect(ctx, anon); err != nil || got.Labels["k"] != "v" || got.Labels[anonymousLabel] != "" {
		t.Fatalf("anonymous volume: %+v %v", got, err)
	} else if _, ok := got.Labels[anonymousLabel]; !ok {
		t.Fatalf("anonymous volume without its label: %+v", got)
	}
	v.Ref(anon, "c2")
	if err := v.Remove(ctx, named, true); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("remove in use: %v", err)
	}
	if rep, _ := v.Prune(ctx, map[string][]string{"all": {"true"}}); len(rep.VolumesDeleted) != 0 {
		t.Errorf("prune took volumes in use: %v", rep.VolumesDeleted)
	}
	// c1 goes with -v: its anonymous volume stays while c2 uses it.
	v.Release("c1", []string{named, anon}, true)
	if _, err := v.Inspect(ctx, anon); err != nil {
		t.Errorf("an anonymous volume another container uses went: %v", err)
	}
	if _, err := v.Inspect(ctx, named); err != nil {
		t.Errorf("rm -v took a named volume: %v", err)
	}
	v.Release("c2", []string{anon}, true)
	if _, err := v.Inspect(ctx, anon); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the anonymous volume outlived its last container: %v", err)
	}
	if err := v.Remove(ctx, named, false); err != nil {
		t.Errorf("remove once unused: %v", err)
	}
	want := []string{"volume create named", "volume create " + anon, "volume destroy " + anon, "volume destroy named"}
	if !slices.Equal(pub.got, want) {
		t.Errorf("events:\n got %q\nwant %q", pub.got, want)
	}
}

// recorder is a Publisher that keeps what it is given.
type recorder struct{ got []string }

func (r *recorder) Publish(typ events.Type, action events.Action, id string, attrs map[string]string) {
	r.got = append(r.got, string(typ)+" "+string(action)+" "+id)
}

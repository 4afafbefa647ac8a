package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/lodge-containers/lodge/errdefs"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// What a crash leaves (a create or removal cut short) is cleaned up at the
// next start; finished volumes come back with their records.
func TestVolumesRecoverAfterCrash(t *testing.T) {
	root := t.TempDir()
	v, err := NewVolumes(root, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := v.Create(ctx, VolumeCreate{Name: "kept", Labels: map[string]string{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "kept", "_data", "f"), []byte("x"), 0o644)
	for _, d := range []string{".new-half", ".rm-gone-12345678/_data", "norecord/_data"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.MkdirAll(filepath.Join(root, "lying", "_data"), 0o755)
	os.WriteFile(filepath.Join(root, "lying", "volume.json"), []byte(`{"Name":"other"}`), 0o600)

	v, err = NewVolumes(root, quietLog())
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
	v, err := NewVolumes(t.TempDir(), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	named, err := v.acquire("named", VolumeCreate{}, "c1")
	if err != nil {
		t.Fatal(err)
	}
	anon, err := v.acquire("", VolumeCreate{Labels: map[string]string{"k": "v"}}, "c1")
	if err != nil || !anon.anonymous() || anon.Labels["k"] != "v" {
		t.Fatalf("anonymous volume: %+v %v", anon, err)
	}
	v.ref(anon.Name, "c2")
	if err := v.Remove(ctx, named.Name, true); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("remove in use: %v", err)
	}
	if rep, _ := v.Prune(ctx, map[string][]string{"all": {"true"}}); len(rep.VolumesDeleted) != 0 {
		t.Errorf("prune took volumes in use: %v", rep.VolumesDeleted)
	}
	// c1 goes with -v: its anonymous volume stays while c2 uses it.
	v.release("c1", []string{named.Name, anon.Name}, true)
	if _, err := v.Inspect(ctx, anon.Name); err != nil {
		t.Errorf("an anonymous volume another container uses went: %v", err)
	}
	if _, err := v.Inspect(ctx, named.Name); err != nil {
		t.Errorf("rm -v took a named volume: %v", err)
	}
	v.release("c2", []string{anon.Name}, true)
	if _, err := v.Inspect(ctx, anon.Name); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the anonymous volume outlived its last container: %v", err)
	}
	if err := v.Remove(ctx, named.Name, false); err != nil {
		t.Errorf("remove once unused: %v", err)
	}
}

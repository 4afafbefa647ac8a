package storage

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cstorage "go.podman.io/storage"
)

// A --rm container's records are kept in the store's volatile files (no
// fdatasync of the whole layers.json on create and rm), a kept one's in
// the synced files; the volatile one is still there, mountable, after the
// store is opened again, and its removal leaves neither record nor layer.
func TestRootfsRecordsVolatileAndKept(t *testing.T) {
	if noNamespace != "" {
		newTestStore(t) // skips or fails with the reason
	}
	root := t.TempDir()
	o := Options{DataRoot: root, RunRoot: filepath.Join(root, "run"), Driver: "vfs", HostUID: os.Getuid()}
	st, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	l, img := oneFileImage(t, st)
	const id = "c0ffee0000000000000000000000000000000000000000000000000000000001"
	if err := st.CreateEphemeralRootfs(id, "sha256:"+img.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	const kept = "c0ffee0000000000000000000000000000000000000000000000000000000002"
	if err := st.CreateRootfs(kept, "sha256:"+img.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	graph := filepath.Join(root, "storage")
	read := func(rel string) string {
		b, _ := os.ReadFile(filepath.Join(graph, rel))
		return string(b)
	}
	if !strings.Contains(read("vfs-containers/volatile-containers.json"), id) || strings.Contains(read("vfs-containers/containers.json"), id) {
		t.Errorf("the container is not recorded in the volatile file only:\nvolatile: %s\nsynced: %s",
			read("vfs-containers/volatile-containers.json"), read("vfs-containers/containers.json"))
	}
	if strings.Contains(read("vfs-containers/volatile-containers.json"), kept) || !strings.Contains(read("vfs-containers/containers.json"), kept) {
		t.Errorf("a kept container is not recorded in the synced file only:\nvolatile: %s\nsynced: %s",
			read("vfs-containers/volatile-containers.json"), read("vfs-containers/containers.json"))
	}
	if !strings.Contains(read("vfs-layers/layers.json"), l.ID) {
		t.Errorf("the image's layer left the synced layers.json: %s", read("vfs-layers/layers.json"))
	}
	st.Shutdown(true)

	st, err = Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Shutdown(true)
	c, err := st.Container(id)
	if err != nil {
		t.Fatalf("the container is gone after the store was opened again: %v", err)
	}
	dir, err := st.Mount(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "f")); err != nil {
		t.Errorf("the container's filesystem lacks the image's file: %v", err)
	}
	if err := st.Unmount(id); err != nil {
		t.Fatal(err)
	}
	if err := st.RemoveRootfs(id); err != nil {
		t.Fatal(err)
	}
	if st.Exists(c.LayerID) {
		t.Errorf("the container's layer %s is still there after its removal", c.LayerID)
	}
	if _, err := st.Container(id); err == nil {
		t.Errorf("the container is still recorded after its removal")
	}
}

// A --rm container's filesystem is mounted volatile (its unmount does not
// sync the whole disk); any other container's is not, so what it fsyncs
// reaches the disk as under Docker.
func TestEphemeralRootfsMountedVolatile(t *testing.T) {
	if noNamespace != "" {
		newTestStore(t) // skips or fails with the reason
	}
	root := t.TempDir()
	st, err := Open(Options{DataRoot: root, RunRoot: filepath.Join(root, "run"), Driver: "overlay", HostUID: os.Getuid()})
	if err != nil {
		t.Fatalf("native overlay, which the kernel tests need: %v", err)
	}
	defer st.Shutdown(true)
	_, img := oneFileImage(t, st)
	for _, tc := range []struct {
		id        string
		ephemeral bool
	}{
		{"e000000000000000000000000000000000000000000000000000000000000001", true},
		{"d000000000000000000000000000000000000000000000000000000000000002", false},
	} {
		create := st.CreateRootfs
		if tc.ephemeral {
			create = st.CreateEphemeralRootfs
		}
		if err := create(tc.id, img.ID, nil, nil); err != nil {
			t.Fatal(err)
		}
		dir, err := st.Mount(tc.id)
		if err != nil {
			t.Fatal(err)
		}
		opts := superOptions(t, dir)
		// Newer kernels show it as fsync=volatile.
		if got := strings.Contains(","+opts+",", ",volatile,") || strings.Contains(","+opts+",", ",fsync=volatile,"); got != tc.ephemeral {
			t.Errorf("ephemeral %v: mounted with %q, volatile %v", tc.ephemeral, opts, got)
		}
		if !strings.Contains(opts, "userxattr") && os.Getuid() != 0 {
			t.Errorf("the mount lost the store's own options: %q", opts)
		}
		if _, err := os.Stat(filepath.Join(dir, "f")); err != nil {
			t.Errorf("the container's filesystem lacks the image's file: %v", err)
		}
		if err := st.RemoveRootfs(tc.id); err != nil {
			t.Fatal(err)
		}
	}
}

// superOptions are the filesystem options of the mount at dir, from
// mountinfo.
func superOptions(t *testing.T, dir string) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[4] != dir {
			continue
		}
		if _, after, ok := strings.Cut(line, " - "); ok {
			if g := strings.Fields(after); len(g) >= 3 {
				return g[2]
			}
		}
	}
	t.Fatalf("%s is not a mount point", dir)
	return ""
}

// oneFileImage puts a one-layer image holding the file /f in st.
func oneFileImage(t *testing.T, st *Store) (*cstorage.Layer, *cstorage.Image) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Uid: os.Getuid(), Gid: os.Getgid(), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	l, _, err := st.PutLayer("", "", nil, "", false, nil, &b)
	if err != nil {
		t.Fatal(err)
	}
	img, err := st.CreateImage("", nil, l.ID, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return l, img
}

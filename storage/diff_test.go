package storage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	cstorage "go.podman.io/storage"
	"go.podman.io/storage/pkg/reexec"
	"go.podman.io/storage/types"

	"github.com/lodge-containers/lodge/internal/layerdiff"
	"github.com/lodge-containers/lodge/internal/testgate"
)

// noNamespace says why these tests cannot have a user namespace ("" when
// they run as root, of the machine or of one).
var noNamespace string

func TestMain(m *testing.M) {
	// go.podman.io/storage applies layers in a re-executed copy of the
	// binary.
	if reexec.Init() {
		return
	}
	// The store chowns and chroots as root does: as a user, the tests
	// run again as root of a user and mount namespace of their own.
	if os.Getuid() != 0 && os.Getenv("_LODGE_STORAGE_TEST_NS") == "" {
		cmd := exec.Command("unshare", append([]string{"--user", "--map-root-user", "--mount", os.Args[0]}, os.Args[1:]...)...)
		cmd.Env = append(os.Environ(), "_LODGE_STORAGE_TEST_NS=1")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			os.Exit(ee.ExitCode())
		}
		if err == nil {
			os.Exit(0)
		}
		noNamespace = "no user namespace for the store's tests: " + err.Error()
	}
	os.Exit(m.Run())
}

// newTestStore is a vfs store in a temporary directory.
func newTestStore(t *testing.T) cstorage.Store {
	t.Helper()
	if noNamespace != "" {
		testgate.SkipOrFail(t, "%s", noNamespace)
	}
	root := t.TempDir()
	st, err := cstorage.GetStore(types.StoreOptions{
		RunRoot: filepath.Join(root, "run"), GraphRoot: filepath.Join(root, "graph"), GraphDriverName: "vfs",
	})
	if err != nil {
		t.Fatalf("vfs store: %v", err)
	}
	t.Cleanup(func() { st.Shutdown(true) })
	return st
}

// A layer diff closed while another goroutine reads it (a gzip copier of
// a push whose registry went away) leaves no goroutine behind: the
// store's tar-split reader used to spin forever on the closed gzip
// reader under it (issue 16.5).
func TestDiffClosedWhileRead(t *testing.T) {
	st := newTestStore(t)
	// Many small files: a long tar-split, read while the tar is written.
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for i := 0; i < 2000; i++ {
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%04d", i), Mode: 0o644, Size: 64, Uid: os.Getuid(), Gid: os.Getgid(), Typeflag: tar.TypeReg, ModTime: time.Unix(1, 0)})
		tw.Write(bytes.Repeat([]byte{'x'}, 64))
	}
	tw.Close()
	l, _, err := st.PutLayer("", "", nil, "", false, nil, &b)
	if err != nil {
		t.Fatalf("put layer: %v", err)
	}
	base := runtime.NumGoroutine()
	for i := 0; i < 40; i++ {
		rc, err := layerdiff.Open(st, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			io.Copy(io.Discard, rc)
			close(done)
		}()
		time.Sleep(time.Duration(i%12) * 150 * time.Microsecond)
		if err := rc.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		<-done
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		var dump strings.Builder
		pprof.Lookup("goroutine").WriteTo(&dump, 1)
		t.Fatalf("%d goroutines left, %d before:\n%s", n, base, dump.String())
	}
	// And a diff closed before it is read, and one read to its end.
	for _, read := range []bool{false, true} {
		rc, err := layerdiff.Open(st, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		if read {
			if n, err := io.Copy(io.Discard, rc); err != nil || n < 2000*512 {
				t.Errorf("read %d bytes: %v", n, err)
			}
		}
		rc.Close()
	}
}

// Layers no image or container uses go; those an image uses, directly or
// as a parent, stay.
func TestRemoveOrphanLayers(t *testing.T) {
	cs := newTestStore(t)
	put := func(parent string) string {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		tw.WriteHeader(&tar.Header{Name: "f" + parent, Mode: 0o644, Uid: os.Getuid(), Gid: os.Getgid(), Typeflag: tar.TypeReg})
		tw.Close()
		l, _, err := cs.PutLayer("", parent, nil, "", false, nil, &b)
		if err != nil {
			t.Fatalf("put layer: %v", err)
		}
		return l.ID
	}
	base := put("")
	top := put(base)
	orphan := put("")
	orphanChild := put(base)
	orphanGrandchild := put(orphanChild)
	if _, err := cs.CreateImage("", nil, top, "", nil); err != nil {
		t.Fatal(err)
	}
	if n := (&Store{Store: cs}).RemoveOrphanLayers(nil); n != 3 {
		t.Errorf("removed %d layers, want 3", n)
	}
	for id, want := range map[string]bool{base: true, top: true, orphan: false, orphanChild: false, orphanGrandchild: false} {
		if got := cs.Exists(id); got != want {
			t.Errorf("layer %s exists: %v, want %v", id[:12], got, want)
		}
	}
}

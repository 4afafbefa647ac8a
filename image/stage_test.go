package image

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"go.podman.io/storage/pkg/archive"
)

// As lodged's does, the tests' main goroutine keeps the main thread (an
// init function runs there), which unpackConfined leaves alone.
func init() { runtime.LockOSThread() }

// The unpacker's thread is chrooted to the layer's directory; the rest of
// lodged is not, while unpacks run and after: every other goroutine still
// sees the host's files, and the process's root stays the host's.
func TestUnpackConfinedLeavesTheProcessAlone(t *testing.T) {
	host := t.TempDir()
	marker := filepath.Join(host, "marker")
	if err := os.WriteFile(marker, []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	dirs := make([]string, 16)
	errs := make(chan error, 2*len(dirs))
	for i := range dirs {
		dirs[i] = t.TempDir()
		var tb bytes.Buffer
		writeTestTar(t, &tb, "etc/hostname", "layer\n")
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- unpackConfined(&tb, dirs[i], &archive.TarOptions{InUserNS: true, IgnoreChownErrors: true})
		}()
		go func() {
			defer wg.Done()
			_, err := os.ReadFile(marker)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, "etc/hostname")); err != nil || string(b) != "layer\n" {
			t.Fatalf("the layer's file in %s: %q %v", d, b, err)
		}
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != "host" {
		t.Errorf("the host's file after the unpacks: %q %v", b, err)
	}
	if root, err := os.Readlink("/proc/self/root"); err != nil || root != "/" {
		t.Errorf("the process's root is %q (%v), want /", root, err)
	}
	if wd, err := os.Getwd(); err != nil || wd == "/" {
		t.Errorf("the process's working directory moved: %q %v", wd, err)
	}
}

// A name that climbs out of the layer resolves inside it: the unpacker's
// root is the layer's directory, whose ".." is itself.
func TestUnpackConfinedResolvesInTheLayer(t *testing.T) {
	host, dir := t.TempDir(), t.TempDir()
	var tb bytes.Buffer
	writeTestTar(t, &tb, "../../../../../.."+host+"/escaped", "tar")
	if err := unpackConfined(&tb, dir, &archive.TarOptions{InUserNS: true, IgnoreChownErrors: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(host, "escaped")); err == nil {
		t.Fatal("the layer wrote outside its directory")
	}
	if b, err := os.ReadFile(filepath.Join(dir, host, "escaped")); err != nil || string(b) != "tar" {
		t.Errorf("the climbing file is not inside the layer: %q %v", b, err)
	}
	if err := unpackConfined(bytes.NewReader(nil), filepath.Join(dir, "missing"), &archive.TarOptions{}); err == nil {
		t.Error("unpacking into a directory that does not exist succeeded")
	}
}

// No thread of lodged ends with an unpack: a thread's end sends the
// parent-death signal of every child it started (the BuildKit helper was
// killed in the middle of a build so, by an unpacker whose goroutine
// ended locked to the thread that had started it).
func TestUnpackConfinedEndsNoThread(t *testing.T) {
	unpack := func() {
		var tb bytes.Buffer
		writeTestTar(t, &tb, "f", "x")
		if err := unpackConfined(&tb, t.TempDir(), &archive.TarOptions{InUserNS: true, IgnoreChownErrors: true}); err != nil {
			t.Error(err)
		}
	}
	unpack()
	threads := func() map[string]bool {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, e := range ents {
			m[e.Name()] = true
		}
		return m
	}
	before := threads()
	var wg sync.WaitGroup
	for range 24 {
		wg.Add(1)
		go func() { defer wg.Done(); unpack() }()
	}
	wg.Wait()
	after := threads()
	for tid := range before {
		if !after[tid] {
			t.Errorf("thread %s ended during the unpacks", tid)
		}
	}
}

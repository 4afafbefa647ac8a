package daemon

import (
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/lodge-containers/lodge/daemon/volume"
)

func TestFilterChanges(t *testing.T) {
	C, A, D := container.ChangeModify, container.ChangeAdd, container.ChangeDelete
	in := []container.FilesystemChange{
		{Kind: C, Path: "/etc"}, {Kind: A, Path: "/etc/hosts"}, {Kind: A, Path: "/etc/resolv.conf"},
		{Kind: C, Path: "/tmp"}, {Kind: A, Path: "/tmp/x"},
		{Kind: A, Path: "/dev"}, {Kind: A, Path: "/dev/shm"}, {Kind: C, Path: "/sbin"}, {Kind: A, Path: "/sbin/docker-init"},
		{Kind: C, Path: "/var"}, {Kind: D, Path: "/var/old"}, {Kind: A, Path: "/proc"},
	}
	got := filterChanges(in)
	want := []container.FilesystemChange{{Kind: C, Path: "/tmp"}, {Kind: A, Path: "/tmp/x"}, {Kind: C, Path: "/var"}, {Kind: D, Path: "/var/old"}}
	if len(got) != len(want) {
		t.Fatalf("filterChanges = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("filterChanges[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestMountFor(t *testing.T) {
	s := &Containers{}
	mps := []volume.MountPoint{
		{Type: mount.TypeBind, Source: "/host/w", Destination: "/w"},
		{Type: mount.TypeBind, Source: "/host/deep", Destination: "/w/a/b"},
		{Type: mount.TypeTmpfs, Destination: "/t"},
	}
	for _, tc := range []struct {
		p, src, inner string
		ok            bool
	}{
		{"/w", "/host/w", "/", true},
		{"/w/", "/host/w", "/", true},
		{"/w/.", "/host/w", "/.", true},
		{"/w/x/", "/host/w", "/x/", true},
		{"/w/a/b/c", "/host/deep", "/c", true},
		{"/w/a/../a/b/c", "/host/deep", "/c", true},
		{"/wx", "", "", false},
		{"/t/x", "", "", false},
		{"/", "", "", false},
	} {
		src, inner, ok := s.mountFor(mps, tc.p)
		if src != tc.src || inner != tc.inner || ok != tc.ok {
			t.Errorf("mountFor(%q) = %q %q %v, want %q %q %v", tc.p, src, inner, ok, tc.src, tc.inner, tc.ok)
		}
	}
}

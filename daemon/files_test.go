package daemon

import (
	"context"
	"reflect"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/lodge-containers/lodge/daemon/files"
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

// TestFilesTargetMounts: docker cp sees a stopped container's binds and
// volumes as directories of lodged's; tmpfs mounts (gone with the
// container) are not among them.
func TestFilesTargetMounts(t *testing.T) {
	s := assemble(context.Background(), ContainersConfig{Volumes: dataPaths{}})
	c := &Container{ID: "aaaaaaaaaaaaaaaa", Name: "cp", Config: &container.Config{}, HostConfig: &container.HostConfig{ReadonlyRootfs: true},
		State: ContainerState{Status: container.StateExited, Pid: 7},
		MountPoints: []volume.MountPoint{
			{Type: mount.TypeBind, Source: "/host/w", Destination: "/w"},
			{Type: mount.TypeVolume, Name: "data", Destination: "/data"},
			{Type: mount.TypeTmpfs, Destination: "/t"},
		}}
	s.recs.add(c)
	got, err := filesHost{s}.Target("cp")
	if err != nil {
		t.Fatal(err)
	}
	want := files.Target{ID: c.ID, ReadonlyRootfs: true, Mounts: []files.Mount{
		{Source: "/host/w", Destination: "/w"}, {Source: "/vol/data", Destination: "/data"},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("target %+v, want %+v (a stopped container has no pid to read through)", got, want)
	}
}

// dataPaths keeps every volume under /vol.
type dataPaths struct{ Volumes }

func (dataPaths) DataPath(name string) string { return "/vol/" + name }

package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/errdefs"
)

func TestValidateNamespaceModes(t *testing.T) {
	for _, tc := range []struct {
		pid, ipc, uts, userns, hostname string
		bad                             string // part of the error, "" when accepted
	}{
		{"", "", "", "", "", ""},
		{"host", "host", "host", "", "", ""},
		{"container:db", "container:db", "", "", "", ""},
		{"", "private", "", "", "", ""},
		{"", "shareable", "", "", "", ""},
		{"", "none", "", "", "", ""},
		{"container:", "", "", "", "", "invalid PID mode"},
		{"private", "", "", "", "", "invalid PID mode"},
		{"", "bogus", "", "", "", "invalid IPC mode"},
		{"", "", "container:db", "", "", ""},
		{"", "", "container:", "", "", "invalid UTS mode"},
		{"", "", "private", "", "", "invalid UTS mode"},
		{"", "", "container:db", "", "h", "conflicting options: hostname and the UTS mode container:db"},
		{"", "", "container:db", "keep-id", "", "keep-id"},
		{"", "", "host", "", "h", "conflicting options: hostname and the UTS mode"},
		{"host", "", "", "keep-id", "", "keep-id"},
		{"", "container:db", "", "keep-id", "", "keep-id"},
		{"", "private", "", "keep-id", "", ""},
	} {
		hc := &container.HostConfig{PidMode: container.PidMode(tc.pid), IpcMode: container.IpcMode(tc.ipc),
			UTSMode: container.UTSMode(tc.uts), UsernsMode: container.UsernsMode(tc.userns)}
		err := validateNamespaceModes(&container.Config{Hostname: tc.hostname}, hc)
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%+v refused: %v", tc, err)
		case tc.bad != "" && (!errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("%+v: %v, want %q", tc, err, tc.bad)
		}
	}
}

func TestDevices(t *testing.T) {
	dir := t.TempDir()
	os.Symlink("/dev/null", filepath.Join(dir, "n"))
	os.WriteFile(filepath.Join(dir, "plain"), nil, 0o600)
	got, err := devices([]container.DeviceMapping{
		{PathOnHost: "/dev/null", PathInContainer: "/dev/mynull", CgroupPermissions: "rwm"},
		{PathOnHost: "/dev/zero", CgroupPermissions: "r"},
		{PathOnHost: dir, PathInContainer: "/dev/tree"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var binds []string
	for _, m := range got {
		binds = append(binds, fmt.Sprintf("%s:%s:%s:%v", m.Type, m.Source, m.Destination, m.ReadOnly))
	}
	if want := "bind:/dev/null:/dev/mynull:false bind:/dev/zero:/dev/zero:true bind:" + dir + "/n:/dev/tree/n:false"; strings.Join(binds, " ") != want {
		t.Errorf("devices %v\nwant %s", binds, want)
	}
	for in, want := range map[string]string{
		"/dev/nope":                 `error gathering device information while adding custom device "/dev/nope": no such file or directory`,
		filepath.Join(dir, "plain"): "not a device node",
	} {
		_, err := devices([]container.DeviceMapping{{PathOnHost: in}})
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}

// TestJoinOtherUTS: a container created with UTS mode "container:X" takes
// X's names at create, joins X's UTS namespace through X's init at start
// (X must run then), and X must exist at create.
func TestJoinOtherUTS(t *testing.T) {
	root := t.TempDir()
	s := assemble(context.Background(), ContainersConfig{Root: root, Rootfs: nopRootfs{}, Log: slog.New(slog.DiscardHandler)})
	pod := &Container{ID: "aaaaaaaaaaaaaaaa", Name: "pod", Config: &container.Config{Hostname: "web", Domainname: "example.org"},
		HostConfig: &container.HostConfig{}, State: ContainerState{Status: container.StateRunning, Pid: 4242},
		exitCh: make(chan struct{}), removedCh: make(chan struct{})}
	s.recs.add(pod)
	hc := &container.HostConfig{UTSMode: "container:pod", IpcMode: "container:pod"}
	app := &Container{ID: "bbbbbbbbbbbbbbbb", Name: "app", Config: &container.Config{}, HostConfig: hc,
		exitCh: make(chan struct{}), removedCh: make(chan struct{})}

	if err := s.recs.checkNamespaceTargets(hc); err != nil {
		t.Fatalf("an existing target refused: %v", err)
	}
	host, domain, ok, err := s.recs.utsNames(hc)
	if err != nil || !ok || host != "web" || domain != "example.org" {
		t.Errorf("names %q %q %v %v, want the target's", host, domain, ok, err)
	}
	if _, _, ok, _ := s.recs.utsNames(&container.HostConfig{UTSMode: "host"}); ok {
		t.Error("names taken for a mode that joins no container")
	}

	sh, err := s.spec.shares(app)
	if err != nil {
		t.Fatal(err)
	}
	if sh.UTS.Path != "/proc/4242/ns/uts" || sh.UTS.Host || sh.IPC.Path != "/proc/4242/ns/ipc" || sh.PID.Path != "" {
		t.Errorf("shares %+v, want the target's uts and ipc", sh)
	}

	pod.State = ContainerState{Status: container.StateExited}
	hc.IpcMode = ""
	if _, err := s.spec.shares(app); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "cannot join UTS of a non running container") {
		t.Errorf("joining a stopped container's UTS: %v, want a conflict", err)
	}
	self := &Container{ID: "cccccccccccccccc", Name: "self", Config: &container.Config{}, HostConfig: &container.HostConfig{UTSMode: "container:self"}}
	s.recs.add(self)
	if _, err := s.spec.shares(self); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("joining its own UTS: %v, want refused", err)
	}

	err = s.recs.checkNamespaceTargets(&container.HostConfig{UTSMode: "container:nope"})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("a missing target: %v, want an invalid argument naming it", err)
	}
}

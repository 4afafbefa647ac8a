package daemon

import (
	"errors"
	"fmt"
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
		{"", "", "container:db", "", "", "invalid UTS mode"},
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

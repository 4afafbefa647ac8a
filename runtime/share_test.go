package runtime

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestSpecShares: a namespace shared with lodged is left out, one shared
// with a container is joined by path, and the kernel filesystems of a
// namespace the container cannot mount for are bound instead.
func TestSpecShares(t *testing.T) {
	hostMqueue = t.TempDir()
	type want struct {
		ns                      map[specs.LinuxNamespaceType]string // "" own, "-" absent, else path
		proc, shm, mqueue, host string                              // mount types ("" absent); hostname
	}
	for _, tc := range []struct {
		name string
		sh   Shares
		want want
	}{
		{"own", Shares{}, want{map[specs.LinuxNamespaceType]string{specs.PIDNamespace: "", specs.IPCNamespace: "", specs.UTSNamespace: ""}, "proc", "tmpfs", "mqueue", "h"}},
		{"host", Shares{PID: Share{Host: true}, IPC: Share{Host: true}, UTS: Share{Host: true}},
			want{map[specs.LinuxNamespaceType]string{specs.PIDNamespace: "-", specs.IPCNamespace: "-", specs.UTSNamespace: "-"}, "bind", "bind", "bind", ""}},
		{"container", Shares{PID: Share{Path: "/proc/7/ns/pid"}, IPC: Share{Path: "/proc/7/ns/ipc"}},
			want{map[specs.LinuxNamespaceType]string{specs.PIDNamespace: "/proc/7/ns/pid", specs.IPCNamespace: "/proc/7/ns/ipc", specs.UTSNamespace: ""}, "proc", "tmpfs", "mqueue", "h"}},
		{"container uts", Shares{UTS: Share{Path: "/proc/7/ns/uts"}},
			want{map[specs.LinuxNamespaceType]string{specs.PIDNamespace: "", specs.UTSNamespace: "/proc/7/ns/uts"}, "proc", "tmpfs", "mqueue", ""}},
		{"ipc none", Shares{NoShm: true}, want{map[specs.LinuxNamespaceType]string{specs.IPCNamespace: ""}, "proc", "", "mqueue", "h"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Spec(SpecOptions{ID: "x", Rootfs: "/r", Args: []string{"sh"}, Hostname: "h", Shares: tc.sh})
			if err != nil {
				t.Fatal(err)
			}
			have := map[specs.LinuxNamespaceType]string{}
			for _, ns := range s.Linux.Namespaces {
				have[ns.Type] = ns.Path
			}
			for typ, w := range tc.want.ns {
				p, ok := have[typ]
				if w == "-" && ok || w != "-" && (!ok || p != w) {
					t.Errorf("%s namespace: %q present %v, want %q", typ, p, ok, w)
				}
			}
			types := map[string]string{}
			for _, m := range s.Mounts {
				types[m.Destination] = m.Type
			}
			if types["/proc"] != tc.want.proc || types["/dev/shm"] != tc.want.shm || types["/dev/mqueue"] != tc.want.mqueue {
				t.Errorf("mounts %v", types)
			}
			if s.Hostname != tc.want.host {
				t.Errorf("hostname %q", s.Hostname)
			}
			if !slices.Contains(s.Process.Env, "HOSTNAME=h") {
				t.Errorf("env %q: the container's name is gone", s.Process.Env)
			}
		})
	}
	if _, err := Spec(SpecOptions{ID: "x", Rootfs: "/r", Args: []string{"sh"}, Shares: Shares{PID: Share{Host: true}},
		UIDMappings: []specs.LinuxIDMapping{{Size: 1}}, GIDMappings: []specs.LinuxIDMapping{{Size: 1}}}); err == nil {
		t.Error("a user namespace of its own and a shared pid namespace: accepted")
	}
}

package runtime

import (
	"bytes"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/shim"
)

func TestSpecDefaults(t *testing.T) {
	s, err := Spec(SpecOptions{ID: "x", Rootfs: "/r", Args: []string{"sh"}, Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	caps := s.Process.Capabilities.Bounding
	if !slices.Equal(caps, sorted(DefaultCapabilities)) {
		t.Errorf("default caps %v", caps)
	}
	if s.Linux.Seccomp == nil || len(s.Linux.Seccomp.Syscalls) == 0 {
		t.Fatal("no default seccomp profile")
	}
	if !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
		t.Errorf("masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if s.Process.Cwd != "/" || !hasEnv(s.Process.Env, "PATH") || !slices.Contains(s.Process.Env, "HOSTNAME=h") {
		t.Errorf("cwd %q env %v", s.Process.Cwd, s.Process.Env)
	}
	var sys, shm bool
	for _, m := range s.Mounts {
		if m.Destination == "/sys" && slices.Contains(m.Options, "ro") {
			sys = true
		}
		if m.Destination == "/dev/shm" && slices.Contains(m.Options, "size=67108864") {
			shm = true
		}
	}
	if !sys || !shm {
		t.Errorf("mounts %+v", s.Mounts)
	}
}

func sorted(l []string) []string {
	c := slices.Clone(l)
	slices.Sort(c)
	return c
}

func TestSpecCapabilities(t *testing.T) {
	s, err := Spec(SpecOptions{CapAdd: []string{"sys_admin"}, CapDrop: []string{"CAP_NET_RAW", "chown"}})
	if err != nil {
		t.Fatal(err)
	}
	caps := s.Process.Capabilities.Effective
	if !slices.Contains(caps, "CAP_SYS_ADMIN") || slices.Contains(caps, "CAP_NET_RAW") || slices.Contains(caps, "CAP_CHOWN") {
		t.Errorf("caps %v", caps)
	}
	s, _ = Spec(SpecOptions{CapDrop: []string{"ALL"}, CapAdd: []string{"KILL"}})
	if c := s.Process.Capabilities.Effective; !slices.Equal(c, []string{"CAP_KILL"}) {
		t.Errorf("drop all add kill: %v", c)
	}
	if err := ValidateCapabilities([]string{"NOT_A_CAP"}, nil); err == nil || !strings.Contains(err.Error(), "unknown capability") {
		t.Errorf("unknown capability: %v", err)
	}
	s, _ = Spec(SpecOptions{Privileged: true})
	if len(s.Process.Capabilities.Bounding) < 38 || s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) != 0 {
		t.Errorf("privileged: %d caps, seccomp %v, masked %v", len(s.Process.Capabilities.Bounding), s.Linux.Seccomp != nil, s.Linux.MaskedPaths)
	}
}

func TestSpecSeccompChoice(t *testing.T) {
	s, _ := Spec(SpecOptions{SeccompProfile: "unconfined"})
	if s.Linux.Seccomp != nil {
		t.Error("unconfined still has a profile")
	}
	s, err := Spec(SpecOptions{SeccompProfile: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}`})
	if err != nil || s.Linux.Seccomp == nil || s.Linux.Seccomp.Syscalls[0].Names[0] != "chmod" {
		t.Errorf("custom profile: %v %+v", err, s.Linux.Seccomp)
	}
	if _, err := Spec(SpecOptions{SeccompProfile: "{not json"}); err == nil {
		t.Error("a broken profile was accepted")
	}
}

// The default filter covers only the machine's architecture for a native
// image, and every architecture Docker's profile lists for a foreign one.
func TestSpecSeccompArchitectures(t *testing.T) {
	native, ok := nativeArch[goruntime.GOARCH]
	if !ok {
		t.Skipf("no seccomp name for %s", goruntime.GOARCH)
	}
	s, err := Spec(SpecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a := s.Linux.Seccomp.Architectures; len(a) != 1 || a[0] != native {
		t.Errorf("native image: architectures %v, want [%s]", a, native)
	}
	s, err = Spec(SpecOptions{ForeignArch: true})
	if err != nil {
		t.Fatal(err)
	}
	if a := s.Linux.Seccomp.Architectures; goruntime.GOARCH == "amd64" && len(a) != 3 {
		t.Errorf("foreign image: architectures %v, want x86_64, x86 and x32", a)
	}
}

func TestSpecRlimits(t *testing.T) {
	limits := func(res int) (uint64, uint64, bool) {
		if res == unix.RLIMIT_NOFILE {
			return 1024, 4096, true
		}
		return 0, unix.RLIM_INFINITY, true
	}
	s, err := Spec(SpecOptions{HardLimits: limits, Ulimits: []Ulimit{{Name: "nproc", Soft: 10, Hard: 20}}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]uint64{}
	for _, r := range s.Process.Rlimits {
		got[r.Type] = [2]uint64{r.Soft, r.Hard}
	}
	if got["RLIMIT_NOFILE"] != [2]uint64{4096, 4096} || got["RLIMIT_NPROC"] != [2]uint64{10, 20} {
		t.Errorf("rlimits %v", got)
	}
	if _, err := Spec(SpecOptions{HardLimits: limits, Ulimits: []Ulimit{{Name: "nofile", Soft: 10, Hard: 100000}}}); err == nil || !strings.Contains(err.Error(), "hard limit 4096") {
		t.Errorf("above the user's hard limit: %v", err)
	}
	if _, err := Spec(SpecOptions{Ulimits: []Ulimit{{Name: "bogus", Soft: 1, Hard: 1}}}); err == nil {
		t.Error("unknown ulimit accepted")
	}
	if _, err := Spec(SpecOptions{Ulimits: []Ulimit{{Name: "nofile", Soft: 10, Hard: 5}}}); err == nil {
		t.Error("soft above hard accepted")
	}
}

func TestSpecMountOrder(t *testing.T) {
	s, err := Spec(SpecOptions{
		Mounts: []Mount{{Type: "bind", Source: "/a", Destination: "/data/sub", ReadOnly: true}, {Type: "bind", Source: "/b", Destination: "/data"}},
		Tmpfs:  map[string]string{"/run": "size=1m"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, m := range s.Mounts {
		switch m.Destination {
		case "/data", "/data/sub", "/run":
			order = append(order, m.Destination)
			if m.Destination == "/data/sub" && !slices.Contains(m.Options, "ro") {
				t.Errorf("read-only bind lost ro: %v", m.Options)
			}
			if m.Destination == "/run" && !slices.Contains(m.Options, "size=1m") {
				t.Errorf("tmpfs options: %v", m.Options)
			}
		}
	}
	if slices.Index(order, "/data") > slices.Index(order, "/data/sub") {
		t.Errorf("nested mount before its parent: %v", order)
	}
}

func TestWriteFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := shim.WriteFrame(&buf, shim.StreamStderr, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got := buf.Bytes(); !bytes.Equal(got[:8], []byte{2, 0, 0, 0, 0, 0, 0, 5}) {
		t.Errorf("header % x", got[:8])
	}
	stream, p, err := shim.ReadFrame(&buf, nil)
	if err != nil || stream != shim.StreamStderr || string(p) != "hello" {
		t.Errorf("shim.ReadFrame = %d %q %v", stream, p, err)
	}
}

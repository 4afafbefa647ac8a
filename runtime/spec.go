package runtime

import (
	"fmt"
	"os"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/profiles/seccomp"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/errdefs"
)

// Mount is a filesystem the container gets besides its root.
type Mount struct {
	Type        string // bind or tmpfs
	Source      string
	Destination string
	Options     []string
	ReadOnly    bool
}

// Ulimit is one --ulimit.
type Ulimit struct {
	Name       string // nofile, nproc, ...
	Soft, Hard int64
}

// SpecOptions is everything that varies between containers. The zero value
// of a field means Docker's default.
type SpecOptions struct {
	ID             string
	Hostname       string
	Domainname     string
	Rootfs         string
	ReadonlyRootfs bool
	Args           []string
	Env            []string
	Cwd            string
	UID, GID       uint32
	AdditionalGids []uint32
	Tty            bool
	NetNSPath      string // join this network namespace; "" means a new one
	// UIDMappings and GIDMappings give the container a user namespace of
	// its own (nested in lodged's); nil shares lodged's.
	UIDMappings, GIDMappings []specs.LinuxIDMapping
	Privileged               bool
	// MaskedPaths and ReadonlyPaths replace Docker's defaults (nil keeps
	// them; empty is none, --security-opt systempaths=unconfined).
	// A privileged container gets none.
	MaskedPaths, ReadonlyPaths []string
	CapAdd, CapDrop            []string
	NoNewPrivileges            bool
	SeccompProfile             string // "" default, "unconfined", or a profile's JSON
	Mounts                     []Mount
	Tmpfs                      map[string]string
	ShmSize                    int64
	Ulimits                    []Ulimit
	Sysctls                    map[string]string
	OOMScoreAdj                *int
	HostsPath                  string
	ResolvConfPath             string
	HostnamePath               string
	// HardLimits reports the daemon's own limit for an RLIMIT_*; a
	// container cannot get more than the user has.
	HardLimits func(resource int) (soft, hard uint64, ok bool)
	// Shares are --pid, --ipc and --uts; the zero value gives the
	// container namespaces of its own.
	Shares Shares
	// CgroupNS gives the container a cgroup namespace of its own
	// (--cgroupns private): /proc/self/cgroup shows its cgroup as "/".
	CgroupNS bool
	// ForeignArch is set when the image is built for another architecture
	// than the machine's (say 386 on amd64): the default seccomp filter
	// then covers every architecture the kernel runs, not only the native.
	ForeignArch bool
}

// DefaultCapabilities is Docker's default set.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// maskedPaths hide host information /proc and /sys would show; readonly
// paths let a container read but not change kernel settings.
var (
	maskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// DefaultMaskedPaths and DefaultReadonlyPaths are Docker's, which a
// container gets unless it says otherwise or is privileged.
func DefaultMaskedPaths() []string { return append([]string(nil), maskedPaths...) }

// DefaultReadonlyPaths: see DefaultMaskedPaths.
func DefaultReadonlyPaths() []string { return append([]string(nil), readonlyPaths...) }

// Spec builds the OCI runtime configuration of a container: Docker's
// defaults for a rootless container plus the options.
func Spec(o SpecOptions) (*specs.Spec, error) {
	caps, err := capabilities(o)
	if err != nil {
		return nil, err
	}
	env := o.Env
	if !hasEnv(env, "PATH") {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	if !hasEnv(env, "HOSTNAME") && o.Hostname != "" {
		env = append(env, "HOSTNAME="+o.Hostname)
	}
	if o.Tty && !hasEnv(env, "TERM") {
		env = append(env, "TERM=xterm")
	}
	cwd := o.Cwd
	if cwd == "" {
		cwd = "/"
	}
	rlimits, err := rlimits(o)
	if err != nil {
		return nil, err
	}
	s := &specs.Spec{
		Version:    specs.Version,
		Root:       &specs.Root{Path: o.Rootfs, Readonly: o.ReadonlyRootfs},
		Hostname:   o.Hostname,
		Domainname: o.Domainname,
		Process: &specs.Process{
			Terminal:        o.Tty,
			User:            specs.User{UID: o.UID, GID: o.GID, AdditionalGids: o.AdditionalGids},
			Args:            o.Args,
			Env:             env,
			Cwd:             cwd,
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			NoNewPrivileges: o.NoNewPrivileges,
			Rlimits:         rlimits,
			OOMScoreAdj:     oomScoreAdj(o.OOMScoreAdj),
		},
		Mounts: defaultMounts(o),
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace, Path: o.NetNSPath},
			},
			Devices:   defaultDevices(),
			Sysctl:    o.Sysctls,
			Resources: &specs.LinuxResources{},
		},
	}
	if o.CgroupNS {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	if o.UIDMappings != nil {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings, s.Linux.GIDMappings = o.UIDMappings, o.GIDMappings
	}
	if !o.Privileged {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = maskedPaths, readonlyPaths
		if o.MaskedPaths != nil {
			s.Linux.MaskedPaths = o.MaskedPaths
		}
		if o.ReadonlyPaths != nil {
			s.Linux.ReadonlyPaths = o.ReadonlyPaths
		}
	}
	extra, err := userMounts(o)
	if err != nil {
		return nil, err
	}
	s.Mounts = append(s.Mounts, extra...)
	if err := applyShares(s, o.Shares, o.UIDMappings != nil); err != nil {
		return nil, err
	}
	if err := setSeccomp(s, o); err != nil {
		return nil, err
	}
	return s, nil
}

// DefaultShmSize is /dev/shm's size when a container asks none, Docker's.
const DefaultShmSize = 64 << 20

// capabilities is the default set changed by --cap-add/--cap-drop, or
// every capability for --privileged.
func capabilities(o SpecOptions) ([]string, error) {
	if o.Privileged {
		known, err := capability.ListSupported()
		if err != nil {
			known = capability.ListKnown()
		}
		var all []string
		for _, c := range known {
			all = append(all, "CAP_"+strings.ToUpper(c.String()))
		}
		return all, nil
	}
	set := map[string]bool{}
	for _, c := range DefaultCapabilities {
		set[c] = true
	}
	for _, list := range []struct {
		names []string
		on    bool
	}{{o.CapDrop, false}, {o.CapAdd, true}} {
		for _, n := range list.names {
			n = strings.ToUpper(n)
			if n == "ALL" {
				for _, c := range capability.ListKnown() {
					set["CAP_"+strings.ToUpper(c.String())] = list.on
				}
				continue
			}
			if !strings.HasPrefix(n, "CAP_") {
				n = "CAP_" + n
			}
			if !knownCapability(n) {
				return nil, errdefs.InvalidArgumentf("unknown capability: %q", n)
			}
			set[n] = list.on
		}
	}
	var out []string
	for c, on := range set {
		if on {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out, nil
}

// ValidateCapabilities checks --cap-add and --cap-drop names, so that a
// typo fails at create, as in Docker.
func ValidateCapabilities(add, drop []string) error {
	_, err := capabilities(SpecOptions{CapAdd: add, CapDrop: drop})
	return err
}

func knownCapability(name string) bool {
	for _, c := range capability.ListKnown() {
		if "CAP_"+strings.ToUpper(c.String()) == name {
			return true
		}
	}
	return false
}

// defaultMounts are the kernel filesystems and device directories every
// container has, and the files lodge writes for it.
func defaultMounts(o SpecOptions) []specs.Mount {
	pts := []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}
	if gidMapped(5) {
		pts = append(pts, "gid=5") // the tty group, where the namespace has it
	}
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	if o.Privileged {
		sysOpts = sysOpts[:3]
	}
	shm := int64(DefaultShmSize)
	if o.ShmSize > 0 {
		shm = o.ShmSize
	}
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: pts},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shm, 10)}},
	}
	if o.NetNSPath != "" && o.UIDMappings != nil {
		// sysfs may only be mounted from the user namespace that owns the
		// network namespace. Every namespace lodged hands out (a bridge
		// container's, the uplink's for --network host, another
		// container's) belongs to lodged's user namespace, which a
		// container shares unless it has one of its own (keep-id): only
		// then does it get the daemon's view, read-only. A fresh sysfs
		// shows the container's own interfaces in /sys/class/net.
		ms[3] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
	}
	for _, f := range []struct{ dst, src string }{
		{"/etc/hosts", o.HostsPath}, {"/etc/resolv.conf", o.ResolvConfPath}, {"/etc/hostname", o.HostnamePath},
	} {
		if f.src != "" {
			ms = append(ms, specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: []string{"rbind", "rprivate"}})
		}
	}
	return ms
}

// userMounts are the -v, --mount and --tmpfs filesystems, parents before
// children so nested destinations work.
func userMounts(o SpecOptions) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, m := range o.Mounts {
		sm := specs.Mount{Destination: m.Destination, Type: m.Type, Source: m.Source}
		switch m.Type {
		case "bind":
			sm.Options = append([]string{"rbind"}, m.Options...)
			if !hasPropagation(m.Options) {
				sm.Options = append(sm.Options, "rprivate")
			}
		case "tmpfs":
			sm.Options = append([]string{"nosuid", "nodev"}, m.Options...)
		default:
			return nil, errdefs.NotImplementedf("mount type %q is not implemented", m.Type)
		}
		if m.ReadOnly {
			sm.Options = append(sm.Options, "ro")
		}
		out = append(out, sm)
	}
	for dst, opts := range o.Tmpfs {
		options := []string{"nosuid", "nodev", "noexec"}
		if opts != "" {
			options = append(options, strings.Split(opts, ",")...)
		}
		out = append(out, specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: options})
	}
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(cleanDst(out[i].Destination), "/") < strings.Count(cleanDst(out[j].Destination), "/")
	})
	return out, nil
}

func cleanDst(p string) string { return strings.TrimSuffix(p, "/") }

func hasPropagation(opts []string) bool {
	for _, o := range opts {
		switch o {
		case "shared", "rshared", "slave", "rslave", "private", "rprivate":
			return true
		}
	}
	return false
}

// defaultDevices are the nodes every container has. In a user namespace
// libcontainer cannot mknod them and bind-mounts the host's instead.
func defaultDevices() []specs.LinuxDevice {
	mode := os.FileMode(0o666)
	zero := uint32(0)
	dev := func(path string, major, minor int64) specs.LinuxDevice {
		return specs.LinuxDevice{Path: path, Type: "c", Major: major, Minor: minor, FileMode: &mode, UID: &zero, GID: &zero}
	}
	return []specs.LinuxDevice{
		dev("/dev/null", 1, 3), dev("/dev/zero", 1, 5), dev("/dev/full", 1, 7),
		dev("/dev/random", 1, 8), dev("/dev/urandom", 1, 9), dev("/dev/tty", 5, 0),
	}
}

var rlimitNames = map[string]int{
	"core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA, "fsize": unix.RLIMIT_FSIZE,
	"locks": unix.RLIMIT_LOCKS, "memlock": unix.RLIMIT_MEMLOCK, "msgqueue": unix.RLIMIT_MSGQUEUE,
	"nice": unix.RLIMIT_NICE, "nofile": unix.RLIMIT_NOFILE, "nproc": unix.RLIMIT_NPROC,
	"rss": unix.RLIMIT_RSS, "rtprio": unix.RLIMIT_RTPRIO, "rttime": unix.RLIMIT_RTTIME,
	"sigpending": unix.RLIMIT_SIGPENDING, "stack": unix.RLIMIT_STACK, "as": unix.RLIMIT_AS,
}

// rlimits gives every container as many open files as the user may have
// (as Podman does; a rootless process cannot raise a hard limit), and the
// --ulimit values, refused with a clear message above the user's own.
func rlimits(o SpecOptions) ([]specs.POSIXRlimit, error) {
	set := map[string]specs.POSIXRlimit{}
	if o.HardLimits != nil {
		if _, hard, ok := o.HardLimits(unix.RLIMIT_NOFILE); ok {
			set["nofile"] = specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: hard, Hard: hard}
		}
	}
	for _, u := range o.Ulimits {
		res, ok := rlimitNames[strings.ToLower(u.Name)]
		if !ok {
			return nil, errdefs.InvalidArgumentf("invalid ulimit type: %s", u.Name)
		}
		soft, hard := uint64(u.Soft), uint64(u.Hard)
		if u.Soft < 0 {
			soft = unix.RLIM_INFINITY
		}
		if u.Hard < 0 {
			hard = unix.RLIM_INFINITY
		}
		if soft > hard {
			return nil, errdefs.InvalidArgumentf("ulimit %s: soft limit %d is above the hard limit %d", u.Name, u.Soft, u.Hard)
		}
		if o.HardLimits != nil {
			if _, max, ok := o.HardLimits(res); ok && max != unix.RLIM_INFINITY && hard > max {
				return nil, errdefs.InvalidArgumentf("ulimit %s=%d:%d: above this user's hard limit %d, which a rootless container cannot raise", u.Name, u.Soft, u.Hard, max)
			}
		}
		set[strings.ToLower(u.Name)] = specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(u.Name), Soft: soft, Hard: hard}
	}
	var out []specs.POSIXRlimit
	for _, r := range set {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out, nil
}

// oomScoreAdj leaves the score alone unless asked: an unprivileged user may
// raise it but not lower it below its own.
func oomScoreAdj(v *int) *int {
	if v == nil || *v == 0 {
		return nil
	}
	return v
}

// setSeccomp applies Docker's default profile (moby's own list, so lodge
// blocks what Docker blocks), a user's profile, or none.
func setSeccomp(s *specs.Spec, o SpecOptions) error {
	switch {
	case o.SeccompProfile == "unconfined" || (o.Privileged && o.SeccompProfile == ""):
		return nil
	case o.SeccompProfile == "":
		p, err := seccomp.GetDefaultProfile(s)
		if err != nil {
			return fmt.Errorf("default seccomp profile: %w", err)
		}
		if !o.ForeignArch {
			p.Architectures = nativeOnly(p.Architectures)
		}
		s.Linux.Seccomp = p
	default:
		p, err := seccomp.LoadProfile(o.SeccompProfile, s)
		if err != nil {
			return errdefs.InvalidArgumentf("seccomp profile: %v", err)
		}
		s.Linux.Seccomp = p
	}
	return nil
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return true
		}
	}
	return false
}

// gidMapped reports whether gid exists in this process's user namespace.
func gidMapped(gid uint32) bool {
	b, err := os.ReadFile("/proc/self/gid_map")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		start, err1 := strconv.ParseUint(f[0], 10, 32)
		n, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 == nil && err2 == nil && uint64(gid) >= start && uint64(gid) < start+n {
			return true
		}
	}
	return false
}

// nativeOnly keeps the machine's own architecture in a filter's list. On
// amd64 Docker's profile also lists x86 and x32; libseccomp's compile time
// grows faster than the list, and those three cost about 30 ms of every
// start (a fifth of `docker run --rm true` here) against about 3 ms for
// x86_64 alone. A native image makes no 32-bit system calls; if one of its
// programs does, the kernel reports an architecture the filter does not
// list and libseccomp's bad-architecture action (kill) applies: stricter,
// never looser, than the whole list.
// Images of other architectures keep the whole list (ForeignArch).
func nativeOnly(arches []specs.Arch) []specs.Arch {
	native, ok := nativeArch[goruntime.GOARCH]
	if !ok {
		return arches
	}
	for _, a := range arches {
		if a == native {
			return []specs.Arch{native}
		}
	}
	return arches
}

// nativeArch is the seccomp name of each Go architecture lodge builds for.
var nativeArch = map[string]specs.Arch{
	"amd64":   specs.ArchX86_64,
	"arm64":   specs.ArchAARCH64,
	"ppc64le": specs.ArchPPC64LE,
	"s390x":   specs.ArchS390X,
	"riscv64": specs.ArchRISCV64,
}

package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/runtime"
)

// specMaker turns records into what runs them: the mounts a create
// settles (volumes referenced, binds checked), and at each start the OCI
// spec with its mounts, shared namespaces, init and runtime. It reads
// other records (a container:X mode, a link) through the store and the
// container's networks through the network glue.
type specMaker struct {
	recs    *store
	net     *netGlue
	volumes Volumes // nil: volumes are 501
	// root is <data-root>/containers: binds of the data root get rslave.
	root string
	// netNSPath is lodged's network namespace, for --network host.
	netNSPath string
	hardLimit func(resource int) (soft, hard uint64, ok bool)
	// initPath is --init's binary ("" for none), defaultInit daemon.json's
	// "init".
	initPath    string
	defaultInit bool
	// runtimes are the OCI runtime binaries by name; defaultRuntime is
	// the one for a container that names none.
	runtimes       map[string]string
	defaultRuntime string
	singleID       bool
	// noNewPrivileges is the daemon's default for a container that does
	// not say (lodged --no-new-privileges).
	noNewPrivileges bool
}

func newSpecMaker(cfg ContainersConfig, recs *store, net *netGlue) *specMaker {
	return &specMaker{recs: recs, net: net, volumes: cfg.Volumes, root: cfg.Root, netNSPath: cfg.NetNSPath, hardLimit: cfg.HardLimit,
		initPath: cfg.InitPath, defaultInit: cfg.DefaultInit, runtimes: cfg.Runtimes, defaultRuntime: cfg.DefaultRuntime, singleID: cfg.SingleID,
		noNewPrivileges: cfg.NoNewPrivileges}
}

// build turns a container's record into its OCI spec. Callers hold c.mu.
func (m *specMaker) build(c *Container, rootfs string) (*specs.Spec, error) {
	hc, cfg := c.HostConfig, c.Config
	dir := m.recs.dir(c.ID)
	if err := writeEtcFiles(dir, cfg, hc, m.net.etcFor(c)); err != nil {
		return nil, err
	}
	maps, err := idMapsFor(hc.UsernsMode)
	if err != nil {
		return nil, err
	}
	uid, gid, groups, err := resolveUser(rootfs, containerUser(c, maps))
	if err != nil {
		return nil, err
	}
	if maps == nil {
		if err := (idSpace{m.singleID}).refuseUnmapped(uid, gid); err != nil {
			return nil, err
		}
		groups = (idSpace{m.singleID}).mappedGroups(groups)
	}
	for _, g := range hc.GroupAdd {
		n, err := resolveGroup(rootfs, g)
		if err != nil {
			return nil, err
		}
		groups = append(groups, n)
	}
	opts := runtime.SpecOptions{
		ID:             c.ID,
		Hostname:       cfg.Hostname,
		Domainname:     cfg.Domainname,
		Rootfs:         rootfs,
		ReadonlyRootfs: hc.ReadonlyRootfs,
		Args:           append([]string{c.Path}, c.Args...),
		Env:            append(m.net.linkEnvs(c), cfg.Env...),
		Cwd:            cfg.WorkingDir,
		UID:            uint32(uid),
		GID:            uint32(gid),
		AdditionalGids: toUint32(groups),
		Tty:            cfg.Tty,
		Privileged:     hc.Privileged,
		MaskedPaths:    hc.MaskedPaths,
		ReadonlyPaths:  hc.ReadonlyPaths,
		ForeignArch:    c.ImageArch != "" && c.ImageArch != goruntime.GOARCH,
		CapAdd:         hc.CapAdd,
		CapDrop:        hc.CapDrop,
		Tmpfs:          hc.Tmpfs,
		ShmSize:        hc.ShmSize,
		Sysctls:        hc.Sysctls,
		HardLimits:     m.hardLimit,
		HostsPath:      filepath.Join(dir, "hosts"),
		ResolvConfPath: filepath.Join(dir, "resolv.conf"),
		HostnamePath:   filepath.Join(dir, "hostname"),
		OOMScoreAdj:    &hc.OomScoreAdj,
		CgroupNS:       hc.CgroupnsMode.IsPrivate(),
	}
	if maps != nil {
		opts.UIDMappings, opts.GIDMappings = maps.UID, maps.GID
	}
	for _, u := range hc.Ulimits {
		opts.Ulimits = append(opts.Ulimits, runtime.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	sec, err := parseSecurityOpts(hc.SecurityOpt, m.noNewPrivileges)
	if err != nil {
		return nil, err
	}
	opts.NoNewPrivileges, opts.SeccompProfile = sec.noNewPrivileges, sec.seccomp
	if sec.systemPaths {
		opts.MaskedPaths, opts.ReadonlyPaths = []string{}, []string{}
	}
	switch mode := string(hc.NetworkMode); {
	case mode == "host":
		if m.netNSPath == "" {
			return nil, errdefs.Unavailablef("--network host: lodged has no network namespace")
		}
		opts.NetNSPath = m.netNSPath
	case mode == "none":
		// A namespace of its own with loopback only.
	case strings.HasPrefix(mode, "container:"):
		other, err := m.recs.get(strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return nil, err
		}
		if other.State.Pid == 0 {
			return nil, errdefs.Conflictf("cannot join network of a non running container: %s", other.ID)
		}
		opts.NetNSPath = fmt.Sprintf("/proc/%d/ns/net", other.State.Pid)
	default:
		// The default bridge or a named network: the namespace Attach
		// pinned and wired ("" without a network service: loopback only).
		opts.NetNSPath = m.net.nsPath(c)
	}
	if opts.Shares, err = m.shares(c); err != nil {
		return nil, err
	}
	devs, err := devices(hc.Devices)
	if err != nil {
		return nil, err
	}
	opts.Mounts = append(opts.Mounts, devs...)
	if init := m.defaultInit; hc.Init != nil && *hc.Init || hc.Init == nil && init {
		if m.initPath == "" {
			return nil, errdefs.Unavailablef("--init: lodged found no init binary: install lodge-init beside lodged, or name one with \"init-path\" in daemon.json")
		}
		opts.Args = append([]string{initInContainer, "--"}, opts.Args...)
		opts.Mounts = append(opts.Mounts, runtime.Mount{Type: "bind", Source: m.initPath, Destination: initInContainer, ReadOnly: true})
	}
	ms, err := m.runtimeMounts(c, rootfs)
	if err != nil {
		return nil, err
	}
	opts.Mounts = append(opts.Mounts, ms...)
	s, err := runtime.Spec(opts)
	if err != nil {
		return nil, err
	}
	s.Version = runtime.SpecVersionFor(m.runtimeBinary(c))
	return s, nil
}

// initInContainer is where --init's binary is mounted: Docker's path, so
// what looks for docker-init finds it.
const initInContainer = "/sbin/docker-init"

// checkBindSource refuses a bind source the user cannot read, with a clear
// message (Docker would create a missing one; lodge, too).
func checkBindSource(src string) error {
	fi, err := os.Stat(src)
	if os.IsNotExist(err) {
		return os.MkdirAll(src, 0o755)
	} else if err != nil {
		return errdefs.InvalidArgumentf("invalid mount config: bind source path %s: %v", src, err)
	}
	if fi.Mode().IsRegular() || fi.IsDir() {
		var f *os.File
		if f, err = os.Open(src); err == nil {
			f.Close()
		}
	} else {
		// A socket (docker.sock for a client in the container), FIFO or
		// device: opening one would fail (a socket) or block the request
		// until a writer came (a FIFO), so the kernel is only asked
		// whether it may be read.
		err = unix.Access(src, unix.R_OK)
		if errors.Is(err, unix.EACCES) {
			err = os.ErrPermission
		}
	}
	if errors.Is(err, os.ErrPermission) {
		// Not the words "permission denied": the docker CLI turns those
		// into exit code 126, as if the command could not run.
		return errdefs.InvalidArgumentf("invalid mount config: bind source path %s is not readable by you", src)
	}
	if err != nil {
		return errdefs.InvalidArgumentf("invalid mount config: bind source path %s: %v", src, err)
	}
	return nil
}

// writeEtcFiles writes the hosts, hostname and resolv.conf files the
// container gets bind-mounted.
func writeEtcFiles(dir string, cfg *container.Config, hc *container.HostConfig, en etcNet) error {
	host := cfg.Hostname
	own := en.hosts
	if own == "" {
		own = "127.0.1.1\t" + host + "\n"
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n" + extraHosts(hc.ExtraHosts, en.hostGateway) + own
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hosts), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "hostname"), []byte(host+"\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "resolv.conf"), resolvConfFor(hc, en.nameserver, en.uplinkDNS), 0o644)
}

// resolvConf is the host's resolv.conf without loopback name servers
// (they do not answer from a container's namespace), falling back to the
// uplink's DNS address.
func resolvConf(uplinkDNS string) []byte {
	b, _ := os.ReadFile("/etc/resolv.conf")
	var out []string
	servers := 0
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "nameserver" {
			if strings.HasPrefix(f[1], "127.") || f[1] == "::1" {
				continue
			}
			servers++
		}
		out = append(out, l)
	}
	if servers == 0 && uplinkDNS != "" {
		out = append(out, "nameserver "+uplinkDNS)
	}
	return []byte(strings.TrimSpace(strings.Join(out, "\n")) + "\n")
}

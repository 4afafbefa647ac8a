package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/cgroupv2"
	"github.com/lodge-containers/lodge/internal/atomicfile"
	"github.com/lodge-containers/lodge/userns"
	"github.com/lodge-containers/lodge/version"
)

// Facts are what lodged learned about the machine while setting itself up,
// carried in from the host-side parent. Info reports them as they are.
type Facts struct {
	DataRoot string
	// DataRootNote says why DataRoot is not the default, when lodged chose
	// another (the default was on a network filesystem).
	DataRootNote  string
	Socket        string
	NetworkDriver string
	PortDriver    string
	// NetworkSkipped says why drivers before NetworkDriver were passed over.
	NetworkSkipped []string
	// IDMapSource is where the subordinate ids came from, or why there are none.
	IDMapSource string
	// SingleID is true when only the user's own id is mapped.
	SingleID bool
	// CgroupRoot is the cgroupfs mount, normally /sys/fs/cgroup.
	CgroupRoot string
	// CgroupScope is what came of asking systemd for a delegated scope.
	CgroupScope cgroupv2.Scope
	// Runtimes are the OCI runtime binaries by name, besides lodge's own;
	// DefaultRuntime is daemon.json's choice ("": lodge's own).
	Runtimes       map[string]string
	DefaultRuntime string
	// NoNewPrivileges is the containers' no_new_privs default.
	NoNewPrivileges bool
}

// System answers /info and /version. It is safe for concurrent use.
type System struct {
	facts   Facts
	id      string
	started time.Time
	SystemServices
}

// SystemServices are what Info counts and names: the other services, made
// before System; any may be nil.
type SystemServices struct {
	Containers interface {
		Counts() (total, running, paused, stopped int)
	}
	Images interface{ Count() int }
	// Storage names the storage driver and its status lines.
	Storage func() (driver string, status [][2]string)
}

// NewSystem loads (or makes, on first start) the engine ID kept under the
// data root.
func NewSystem(f Facts, svc SystemServices) (*System, error) {
	id, err := engineID(f.DataRoot)
	if err != nil {
		return nil, err
	}
	return &System{facts: f, id: id, started: time.Now(), SystemServices: svc}, nil
}

func engineID(dataRoot string) (string, error) {
	p := filepath.Join(dataRoot, "engine-id")
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails (Go 1.24)
	id := hex.EncodeToString(raw[:])
	if err := atomicfile.Write(p, []byte(id+"\n"), 0o600); err != nil {
		return "", err
	}
	return id, nil
}

// LodgeFacts are the lines `lodge info` and `docker info` show about the
// rootless set-up, in order.
func (s *System) LodgeFacts() [][2]string {
	out := [][2]string{}
	uids, gids, err := userns.CurrentMaps()
	if err == nil {
		out = append(out, [2]string{"ID map (uid)", userns.FormatMap(uids)}, [2]string{"ID map (gid)", userns.FormatMap(gids)})
	}
	out = append(out, [2]string{"ID map source", s.facts.IDMapSource})
	out = append(out, [2]string{"Network driver", s.facts.NetworkDriver})
	for _, sk := range s.facts.NetworkSkipped {
		out = append(out, [2]string{"Network driver skipped", sk})
	}
	out = append(out, [2]string{"Port driver", s.facts.PortDriver})
	if s.Storage != nil {
		d, _ := s.Storage()
		out = append(out, [2]string{"Storage", d})
	}
	cg := s.cgroups()
	out = append(out, [2]string{"Cgroups", s.facts.CgroupScope.Summary(cg)})
	if cg.Writable {
		delegated := strings.Join(cg.Controllers, " ")
		if delegated == "" {
			delegated = "none"
		}
		out = append(out, [2]string{"Cgroup controllers delegated", delegated})
	}
	out = append(out, [2]string{"Data root", s.facts.DataRoot})
	out = append(out, [2]string{"Socket", s.facts.Socket})
	return out
}

func (s *System) cgroups() cgroupv2.State {
	st, err := cgroupv2.Detect(s.facts.CgroupRoot, "/proc/self/cgroup")
	if err != nil {
		return cgroupv2.State{Layout: st.Layout}
	}
	return st
}

// Info reports lodge's state in Docker's /info shape.
func (s *System) Info(ctx context.Context) (system.Info, error) {
	cg := s.cgroups()
	var uts unix.Utsname
	_ = unix.Uname(&uts) // uname(2) fails only on a bad pointer
	host, _ := os.Hostname()
	info := system.Info{
		ID:                 s.id,
		Name:               host,
		ServerVersion:      version.Version,
		OSType:             "linux",
		Architecture:       unix.ByteSliceToString(uts.Machine[:]),
		KernelVersion:      unix.ByteSliceToString(uts.Release[:]),
		OperatingSystem:    osRelease(),
		NCPU:               runtime.NumCPU(),
		MemTotal:           memTotal(),
		DockerRootDir:      s.facts.DataRoot,
		Driver:             "",
		SystemStatus:       s.LodgeFacts(),
		LoggingDriver:      "json-file",
		CgroupVersion:      cg.Version(),
		CgroupDriver:       s.facts.CgroupScope.Driver(cg),
		NGoroutines:        runtime.NumGoroutine(),
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		IndexServerAddress: "https://index.docker.io/v1/",
		SecurityOptions:    s.securityOptions(),
		Labels:             []string{},
		HTTPProxy:          os.Getenv("HTTP_PROXY"),
		HTTPSProxy:         os.Getenv("HTTPS_PROXY"),
		NoProxy:            os.Getenv("NO_PROXY"),
		// Docker's answer when this node is in no swarm; clients read it
		// to know that the swarm routes will answer 503.
		Swarm: swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		// The drivers lodge has, as Docker lists its registered ones
		// (none, a log driver that keeps nothing, is not listed there).
		Plugins: system.PluginsInfo{
			Volume:  []string{"local"},
			Network: []string{"bridge", "host", "null"},
			Log:     []string{logDriver, logDriverK8s, logDriverLocal},
		},
	}
	info.Runtimes = map[string]system.RuntimeWithStatus{EmbeddedRuntime: {Status: map[string]string{"runtime": "runc's libcontainer, embedded in lodge-monitor"}}}
	for name, path := range s.facts.Runtimes {
		info.Runtimes[name] = system.RuntimeWithStatus{Runtime: system.Runtime{Path: path}}
	}
	info.DefaultRuntime = s.facts.DefaultRuntime
	if info.DefaultRuntime == "" {
		info.DefaultRuntime = EmbeddedRuntime
	}
	if s.Containers != nil {
		info.Containers, info.ContainersRunning, info.ContainersPaused, info.ContainersStopped = s.Containers.Counts()
	}
	if s.Images != nil {
		info.Images = s.Images.Count()
	}
	if s.Storage != nil {
		info.Driver, info.DriverStatus = s.Storage()
	}
	info.MemoryLimit = cg.Writable && cg.Has("memory")
	info.SwapLimit = info.MemoryLimit
	info.CPUCfsPeriod = cg.Writable && cg.Has("cpu")
	info.CPUCfsQuota = info.CPUCfsPeriod
	info.CPUShares = info.CPUCfsPeriod
	info.CPUSet = cg.Writable && cg.Has("cpuset")
	info.PidsLimit = cg.Writable && cg.Has("pids")
	if s.facts.SingleID {
		info.Warnings = append(info.Warnings, "WARNING: running with a single-id map ("+s.facts.IDMapSource+"): files owned by other users in images are owned by root in containers. Ask for a range in /etc/subuid and /etc/subgid and install newuidmap (uidmap) for full maps.")
	}
	if s.facts.DataRootNote != "" {
		info.Warnings = append(info.Warnings, "WARNING: "+s.facts.DataRootNote)
	}
	if !cg.Delegated() {
		info.Warnings = append(info.Warnings, "WARNING: no cgroup v2 controllers delegated to lodged ("+s.facts.CgroupScope.Summary(cg)+"): resource limits are refused")
	}
	return info, nil
}

// Version reports lodge's version in Docker's /version shape.
func (s *System) Version(ctx context.Context) (system.VersionResponse, error) {
	var uts unix.Utsname
	_ = unix.Uname(&uts) // uname(2) fails only on a bad pointer
	kernel := unix.ByteSliceToString(uts.Release[:])
	commit, built := vcsSetting("vcs.revision"), vcsSetting("vcs.time")
	return system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "lodge " + version.Version},
		Version:       version.Version,
		APIVersion:    version.APIVersion,
		MinAPIVersion: version.MinAPIVersion,
		Os:            "linux",
		Arch:          runtime.GOARCH,
		GitCommit:     commit,
		GoVersion:     runtime.Version(),
		KernelVersion: kernel,
		BuildTime:     built,
		Components: []system.ComponentVersion{{
			Name:    "Engine",
			Version: version.Version,
			Details: map[string]string{
				"ApiVersion":    version.APIVersion,
				"MinAPIVersion": version.MinAPIVersion,
				"GitCommit":     commit,
				"GoVersion":     runtime.Version(),
				"Os":            "linux",
				"Arch":          runtime.GOARCH,
				"KernelVersion": kernel,
				"BuildTime":     built,
				"Experimental":  "false",
			},
		}, {
			Name:    "rootlesskit",
			Version: moduleVersion("github.com/rootless-containers/rootlesskit/v3"),
			Details: map[string]string{"NetworkDriver": s.facts.NetworkDriver, "PortDriver": s.facts.PortDriver},
		}},
	}, nil
}

// vcsSetting is what the Go toolchain recorded of the checkout lodged was
// built from: vcs.revision, the commit, or vcs.time, its time (RFC 3339),
// which stands for the build time, so that a build is reproducible.
func vcsSetting(key string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

func moduleVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			return d.Version
		}
	}
	return ""
}

func osRelease() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

func memTotal() int64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}

// String is for logs.
func (f Facts) String() string {
	return fmt.Sprintf("network=%s port=%s idmap=%q data-root=%s", f.NetworkDriver, f.PortDriver, f.IDMapSource, f.DataRoot)
}

// securityOptions is /info's SecurityOptions, in Docker's words and
// order: every container not --privileged gets Docker's default seccomp
// profile, lodged runs rootless, and no_new_privs when it is the default.
func (s *System) securityOptions() []string {
	opts := []string{"name=seccomp,profile=builtin", "name=rootless"}
	if s.facts.NoNewPrivileges {
		opts = append(opts, "name=no-new-privileges")
	}
	return opts
}

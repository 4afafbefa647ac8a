package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/build"
	"github.com/lodge-containers/lodge/cgroupv2"
	"github.com/lodge-containers/lodge/daemon"
	netsvc "github.com/lodge-containers/lodge/daemon/network"
	"github.com/lodge-containers/lodge/daemon/volume"
	"github.com/lodge-containers/lodge/image"
	"github.com/lodge-containers/lodge/paths"
	"github.com/lodge-containers/lodge/runtime"
	"github.com/lodge-containers/lodge/storage"
	"github.com/lodge-containers/lodge/userns"
)

// fileConfig is the part of daemon.json (Docker's names) lodged reads from
// $XDG_CONFIG_HOME/lodge/daemon.json. Flags win over it.
type fileConfig struct {
	DataRoot           string   `json:"data-root"`
	StorageDriver      string   `json:"storage-driver"`
	InsecureRegistries []string `json:"insecure-registries"`
	RegistryMirrors    []string `json:"registry-mirrors"`
	Init               bool     `json:"init"`
	InitPath           string   `json:"init-path"`
	// Runtimes are OCI runtime binaries by name, as Docker's daemon.json
	// has them: {"crun": {"path": "/usr/bin/crun"}}.
	Runtimes       map[string]struct{ Path string } `json:"runtimes"`
	DefaultRuntime string                           `json:"default-runtime"`
	// CgroupManager is --cgroup-manager's default: auto, systemd or cgroupfs.
	CgroupManager string `json:"cgroup-manager"`
	// SingleIDMap skips the subordinate ranges even when they exist, as
	// --single-id-map does.
	SingleIDMap bool `json:"single-id-map"`
	// IdleStop is --idle-stop's default, a Go duration ("30m").
	IdleStop string `json:"idle-stop"`
	// NoNewPrivileges is --no-new-privileges's default (nil: on).
	NoNewPrivileges *bool `json:"no-new-privileges"`
}

// defaultCgroupns is Docker's default cgroup namespace mode: private where
// the host has only cgroup v2, host where it has v1 hierarchies.
func defaultCgroupns(st cgroupv2.State) container.CgroupnsMode {
	if st.Layout == cgroupv2.Unified {
		return container.CgroupnsModePrivate
	}
	return container.CgroupnsModeHost
}

// noNewPrivileges is --no-new-privileges when given, else daemon.json's
// no-new-privileges, else true: a setuid program in a container gives
// its user nothing unless the container asks for it.
func noNewPrivileges(o options, fc fileConfig) bool {
	if !o.noNewPrivsSet && fc.NoNewPrivileges != nil {
		return *fc.NoNewPrivileges
	}
	return o.noNewPrivs
}

// idleStopAfter is --idle-stop, else daemon.json's idle-stop, else 0.
func idleStopAfter(o options, fc fileConfig) (time.Duration, error) {
	if o.idleStop != 0 || fc.IdleStop == "" {
		return max(o.idleStop, 0), nil
	}
	d, err := time.ParseDuration(fc.IdleStop)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("daemon.json: idle-stop %q is not a duration such as \"30m\"", fc.IdleStop)
	}
	return d, nil
}

// findRuntimes lists the OCI runtime binaries --runtime can name: runc and
// crun where installed, and daemon.json's own.
func findRuntimes(fc fileConfig, log *slog.Logger) map[string]string {
	rts := map[string]string{}
	for _, name := range []string{"runc", "crun"} {
		if p, err := exec.LookPath(name); err == nil {
			rts[name] = p
		}
	}
	for name, r := range fc.Runtimes {
		if name == daemon.EmbeddedRuntime {
			log.Warn("daemon.json names a runtime lodge, which is lodge's own: ignored")
			continue
		}
		p, err := exec.LookPath(r.Path)
		if err != nil {
			log.Warn("runtime in daemon.json is not usable", "name", name, "path", r.Path, "err", err)
			continue
		}
		rts[name] = p
	}
	return rts
}

func readConfig(path string) (fileConfig, error) {
	var c fileConfig
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// services are the daemon's backends.
type services struct {
	store      *storage.Store
	images     *daemon.Images
	containers *daemon.Containers
	networks   *netsvc.Networks
	volumes    *volume.Store
	events     *daemon.Events
	builds     *daemon.Builds
}

// startServices opens the store and loads images and containers.
func startServices(ctx context.Context, log *slog.Logger, dataRoot, runDir string, o options, fc fileConfig, singleID bool, runtimes map[string]string) (*services, error) {
	driver := o.storageDriver
	if driver == "" {
		driver = fc.StorageDriver
	}
	st, err := storage.Open(storage.Options{
		DataRoot: dataRoot, RunRoot: runDir, Driver: driver, SingleID: singleID, HostUID: hostUID(), Log: log,
	})
	if err != nil {
		return nil, err
	}
	tmp := filepath.Join(dataRoot, "tmp")
	if err := os.RemoveAll(tmp); err != nil { // spools of loads a crash interrupted
		log.Warn("removing the spools of interrupted loads", "dir", tmp, "err", err)
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	imgs := image.New(st.Store, image.Config{
		TmpDir: tmp, InsecureRegistries: append(fc.InsecureRegistries, o.insecureRegistries...),
		Mirrors: append(fc.RegistryMirrors, o.registryMirrors...), Log: log,
	})
	// A kill -9 between the store's record of an image and its config
	// leaves a half image; no container can use one, so it goes.
	imgs.RemoveIncomplete()
	// And one between a layer and its image leaves a layer nothing uses.
	st.RemoveOrphanLayers(log)
	netnsPath := ""
	if dir := userns.StateDir(); dir != "" {
		// The keeper's mount of the uplink namespace outlives
		// rootlesskit's state directory, which its parent removes.
		if p := userns.UplinkNSPath(paths.FromOS().RuntimeDir()); isNSMount(p) {
			netnsPath = p
		} else if _, err := os.Stat(filepath.Join(dir, "netns")); err == nil {
			netnsPath = filepath.Join(dir, "netns")
		}
	}
	if mon, err := runtime.MonitorBinary(); err == nil {
		if filepath.Base(mon) == runtime.MonitorBinaryName {
			log.Info("container monitor", "path", mon)
		} else {
			log.Warn("lodge-monitor is not installed beside lodged: lodged monitors containers itself, which makes starts slower and monitors larger", "path", mon)
		}
	}
	// Events first: every service gets it at construction.
	ev := daemon.NewEvents()
	nw, err := startNetworks(dataRoot, runDir, netnsPath, os.Getenv(envNetDriver), ev, log)
	if err != nil {
		return nil, err
	}
	cgState, cgErr := cgroupv2.Detect(cgroupRoot, "/proc/self/cgroup")
	if cgErr != nil {
		log.Warn("reading lodged's own cgroup", "err", cgErr)
	}
	scope := cgroupScope()
	cgManager, err := cgroupManager(o, fc)
	if err != nil {
		return nil, err
	}
	if err := checkCgroupScope(cgManager, cgState, scope); err != nil {
		return nil, err
	}
	cgSummary := scope.Summary(cgState)
	var cgTree daemon.CgroupTree
	if t, err := cgroupv2.NewTree(cgState); err == nil {
		cgTree = t
		log.Info("cgroups", "state", cgSummary, "driver", scope.Driver(cgState))
	} else {
		log.Warn("containers get no cgroups of their own: no limits, no pause", "why", cgSummary, "err", err)
	}
	vols, err := volume.New(filepath.Join(dataRoot, "volumes"), log, ev)
	if err != nil {
		return nil, err
	}
	keeperDir := paths.FromOS().RuntimeDir()
	cs, err := daemon.NewContainers(ctx, daemon.ContainersConfig{
		Root: filepath.Join(dataRoot, "containers"), RunDir: runDir,
		Images: imgs, Rootfs: st, Log: log, NetNSPath: netnsPath, HardLimit: hardLimit,
		InitPath: findInit(fc.InitPath, log), DefaultInit: fc.Init,
		Runtimes: runtimes, DefaultRuntime: fc.DefaultRuntime, Networks: nw, Volumes: vols,
		Cgroups: cgTree, CgroupSummary: cgSummary, CgroupLimitsWarn: o.cgroupLimits == "warn",
		Events: ev, SingleID: singleID, NoNewPrivileges: noNewPrivileges(o, fc),
		DefaultCgroupns: defaultCgroupns(cgState),
		ContainersChanged: func(ended bool) {
			// No keeper (lodged runs in namespaces it did not make):
			// nothing to tell.
			if err := userns.CheckPin(keeperDir, ended); err != nil {
				log.Debug("asking the namespace keeper for a pin", "err", err)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	images := &daemon.Images{Service: imgs, Registry: image.NewRegistry(imgs), Archives: image.NewArchives(imgs),
		Maker: image.NewMaker(imgs), Containers: cs}
	bb := &daemon.BuildBackend{Images: images, Containers: cs, ScratchDir: filepath.Join(dataRoot, "build-scratch"), TmpDir: tmp}
	// Before the API serves: a build a crash cut short left its RUN
	// container and scratch filesystems, and nobody will finish it.
	bb.Recover(ctx)
	builds := &daemon.Builds{Builder: build.New(bb, filepath.Join(dataRoot, "build")), Images: images}
	return &services{store: st, images: images, containers: cs, networks: nw, volumes: vols, events: ev, builds: builds}, nil
}

// findInit picks the binary --init runs as pid 1: daemon.json's init-path,
// else lodge-init beside lodged, else a static init a package installed
// (tini's, Podman's catatonit). It must be static: it runs on the
// container's root, not the host's.
func findInit(configured string, log *slog.Logger) string {
	if configured != "" {
		if _, err := os.Stat(configured); err != nil {
			log.Warn("init-path in daemon.json is unusable: --init will fail", "path", configured, "err", err)
			return ""
		}
		return configured
	}
	if p, err := paths.Helper("lodge-init"); err == nil {
		return p
	}
	for _, name := range []string{"docker-init", "tini-static", "catatonit"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	for _, p := range []string{"/usr/libexec/podman/catatonit", "/usr/libexec/catatonit/catatonit"} {
		if fileExists(p) {
			return p
		}
	}
	log.Info("no init binary found: --init will fail until lodge-init is installed beside lodged")
	return ""
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// storageInfo is the storage part of `info`.
func (s *services) storageInfo() (string, [][2]string) {
	var status [][2]string
	if r := s.store.Reason(); r != "" {
		status = append(status, [2]string{"Fallback", r})
	}
	if st, err := s.store.Status(); err == nil {
		status = append(status, st...)
	}
	return s.store.Driver(), status
}

// hostUID is the user's uid outside the namespace: whom uid 0 maps to.
func hostUID() int {
	uids, _, err := userns.CurrentMaps()
	if err == nil {
		for _, m := range uids {
			if m.ContainerID == 0 {
				return m.HostID
			}
		}
	}
	return os.Getuid()
}

// hardLimit reports lodged's own rlimit for a resource.
func hardLimit(resource int) (soft, hard uint64, ok bool) {
	var r unix.Rlimit
	if err := unix.Getrlimit(resource, &r); err != nil {
		return 0, 0, false
	}
	return r.Cur, r.Max, true
}

// buildKit is the BuildKit helper, not started yet, or nil (and the
// classic builder only, said once in the log) when lodge-buildkitd or runc
// is missing.
func buildKit(dataRoot, runDir, sock, runc string, log *slog.Logger) *daemon.BuildKit {
	bin, err := paths.Helper(daemon.BuildKitBinary)
	if err != nil || runc == "" {
		log.Warn("BuildKit is not served (docker buildx build and compose v2 builds answer 501): the classic builder only", "helper", err, "runc", runc)
		return nil
	}
	return &daemon.BuildKit{
		Binary: bin, Runc: runc, Root: filepath.Join(dataRoot, "buildkit"),
		Socket: filepath.Join(runDir, "buildkitd.sock"), LodgeSocket: sock, Log: log,
	}
}

// isNSMount tells whether path is a namespace file mounted there.
func isNSMount(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

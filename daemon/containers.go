package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lodge-containers/lodge/daemon/exec"
	"github.com/lodge-containers/lodge/daemon/health"
	netsvc "github.com/lodge-containers/lodge/daemon/network"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/internal/atomicfile"
	"github.com/lodge-containers/lodge/runtime"
)

// ImageSource finds the image a new container runs.
type ImageSource interface {
	// Resolve returns the image's ID ("sha256:..." or bare hex) and its
	// config; an unknown image is an errdefs.ErrNotFound.
	Resolve(ctx context.Context, ref string) (id string, cfg *dockerspec.DockerOCIImage, err error)
}

// RootfsStore makes and mounts containers' root filesystems.
type RootfsStore interface {
	// CreateRootfs's maps are nil, or the container's own user namespace
	// maps (ids of lodged's namespace), which the layer must be owned in.
	CreateRootfs(id, imageID string, uidMap, gidMap []specs.LinuxIDMapping) error
	Mount(id string) (string, error)
	Unmount(id string) error
	RemoveRootfs(id string) error
}

// ephemeralRootfs is a RootfsStore that makes a --rm container's
// filesystem cheaper to unmount, since nothing of it outlives the container.
type ephemeralRootfs interface {
	CreateEphemeralRootfs(id, imageID string, uidMap, gidMap []specs.LinuxIDMapping) error
}

// ContainersConfig wires the container service.
type ContainersConfig struct {
	Root      string // <data-root>/containers
	RunDir    string // runtime dir: monitors' sockets, libcontainer state
	Images    ImageSource
	Rootfs    RootfsStore
	Log       *slog.Logger
	NetNSPath string // lodged's detached network namespace, for --network host
	// HardLimit reports the daemon's own hard rlimits, for the spec.
	HardLimit func(resource int) (soft, hard uint64, ok bool)
	// InitPath is the static init binary --init mounts at pid 1's place;
	// empty when there is none. DefaultInit is daemon.json's "init".
	InitPath    string
	DefaultInit bool
	// Runtimes are the OCI runtime binaries --runtime can name, by name;
	// DefaultRuntime is used when a container names none ("" or
	// EmbeddedRuntime: lodge's own).
	Runtimes       map[string]string
	DefaultRuntime string
	// Networks gives bridge-mode containers their networks; nil for
	// loopback only.
	Networks NetworkService
	// Volumes keeps the named and anonymous volumes; nil leaves them 501.
	Volumes Volumes
	// Cgroups is lodged's delegated cgroup v2 tree, nil without one
	// (CgroupSummary says why). CgroupLimitsWarn runs containers without
	// the limits it cannot enforce, with a warning, instead of refusing.
	Cgroups          CgroupTree
	CgroupSummary    string
	CgroupLimitsWarn bool
	// Events receives the containers' events; nil drops them.
	Events *Events
	// SingleID is true when lodged's user namespace maps only the user's
	// own id (no subuid range): no other uid or gid exists in containers.
	SingleID bool
	// NoNewPrivileges is set on every container whose --security-opt
	// does not clear it (no-new-privileges=false).
	NoNewPrivileges bool
	// DefaultCgroupns is the cgroup namespace mode of a container that
	// names none: Docker's, private on a cgroup v2 host and host on v1.
	DefaultCgroupns container.CgroupnsMode
	// ContainersChanged, when set, runs (in a goroutine of its own)
	// after a container's monitor started or a new one adopted it, and
	// a second after a container ended: lodged tells its namespace
	// keeper, which then starts a pin, or wakes the pin to see whether
	// it is still needed.
	ContainersChanged func(ended bool)
}

// Containers is the container engine: it holds the parts each concern of a
// container is cut into (records, network glue, spec, cgroup control,
// lifecycle, exec table, health probes) and does what spans them: create,
// remove, rename, inspect, list, prune, attach. It is safe for concurrent
// use.
type Containers struct {
	ContainersConfig
	stateRoot string

	// recs are the records, their names and files.
	recs *store
	// net hands the network service what it needs of the records.
	net *netGlue
	// spec settles mounts at create and makes the OCI spec at start.
	spec *specMaker
	// cg makes, fills and removes the containers' cgroups.
	cg cgroupCtl
	// control signals, freezes and kills containers, and updates limits.
	control *CgroupControl
	// lifecycle starts, stops and watches containers.
	lifecycle *Lifecycle
	// execs is the exec table; each exec belongs to a container here.
	execs *exec.Service
	// health runs the healthchecks, each probe an exec.
	health *health.Prober
	// life ends when the daemon shuts down (Close, or the context
	// NewContainers was given): the exit watchers and health probes the
	// service starts end with it.
	life context.Context
	stop context.CancelFunc
}

// Close ends the goroutines the service started: exit watchers and
// health probes. The containers run on, and the next daemon re-adopts
// them. It is idempotent.
func (s *Containers) Close() error {
	if s.stop != nil {
		s.stop()
	}
	return nil
}

// assemble wires the container service's parts, with no record loaded
// and nothing started: NewContainers, and tests.
func assemble(ctx context.Context, cfg ContainersConfig) *Containers {
	s := &Containers{ContainersConfig: cfg, stateRoot: filepath.Join(cfg.RunDir, "runc"), recs: newStore(cfg.Root, cfg.RunDir, cfg.Log)}
	s.net = &netGlue{nw: cfg.Networks, recs: s.recs}
	s.spec = newSpecMaker(cfg, s.recs, s.net)
	s.life, s.stop = context.WithCancel(ctx)
	s.cg = newCgroupCtl(cfg)
	s.control = newCgroupControl(s.recs, s.cg, cfg.Events, cfg.Log)
	s.execs = exec.New(s.stateRoot, execHost{s})
	s.execs.Log = cfg.Log
	s.health = health.New(s.life, healthHost{s}, s.execs)
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	s.lifecycle = &Lifecycle{recs: s.recs, net: s.net, spec: s.spec, cg: s.cg, control: s.control, execs: s.execs, health: s.health,
		rootfs: cfg.Rootfs, ev: cfg.Events, log: log, stateRoot: s.stateRoot, life: s.life, remove: s.Remove, containersChanged: cfg.ContainersChanged}
	return s
}

// NewContainers loads the containers under cfg.Root and re-adopts the
// running ones: a container whose monitor still answers keeps running under
// this daemon; one that ended while no daemon ran gets its recorded exit.
func NewContainers(ctx context.Context, cfg ContainersConfig) (*Containers, error) {
	s := assemble(ctx, cfg)
	if err := os.MkdirAll(s.recs.root, 0o700); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(s.recs.root)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		c, err := loadContainer(filepath.Join(s.recs.root, e.Name(), "container.json"))
		if errors.Is(err, fs.ErrNotExist) && s.Rootfs != nil {
			// A create or rm a crash cut short: the directory comes
			// first and goes last, the record in between.
			if err := s.Rootfs.RemoveRootfs(e.Name()); err != nil {
				cfg.Log.Warn("removing a half-made container's filesystem", "id", e.Name(), "err", err)
			}
			if err := os.RemoveAll(filepath.Join(s.recs.root, e.Name())); err != nil {
				cfg.Log.Warn("removing a half-made container's directory", "id", e.Name(), "err", err)
			}
			cfg.Log.Warn("removed a container a crash left half-made or half-removed", "id", e.Name())
			continue
		}
		if err != nil {
			cfg.Log.Warn("skipping unreadable container record", "dir", e.Name(), "err", err)
			continue
		}
		s.recs.add(c)
		s.recs.view.put(c, nil)
		s.spec.refVolumes(c)
		if c.running() {
			ctl := runtime.NewCtl(s.recs.sockDir(c.ID))
			_, alive, err := ctl.Running()
			ctl.Close()
			// A container whose monitor died runs on: its init says so.
			if err == nil && alive || c.initProc().Alive() {
				if s.Networks != nil {
					s.Networks.Readopt(ctx, c.ID)
					// A sandbox recorded before it kept names learns them.
					s.Networks.SetNames(c.ID, c.Name, c.Config.Hostname, c.HostConfig.Links)
				}
				s.lifecycle.startHealth(c)
				if err == nil && alive {
					s.lifecycle.holdOutputs(c)
				}
				go s.lifecycle.watch(c)
				s.lifecycle.tellMonitorStarted()
				continue
			}
			// It ended while no daemon ran: what its monitor recorded,
			// and what is left of it cleaned up if the monitor could not.
			s.lifecycle.watch(c)
		}
	}
	if s.Networks != nil {
		// Sandboxes of containers that ended while no daemon ran go.
		running := map[string]bool{}
		for _, c := range s.recs.all() {
			c.mu.Lock()
			if c.running() {
				running[c.ID] = true
			}
			c.mu.Unlock()
		}
		s.Networks.DropStale(ctx, running)
	}
	return s, nil
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Create makes a container from an image: it checks the request, merges
// the image's defaults, creates the writable layer and records it.
func (s *Containers) Create(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (container.CreateResponse, error) {
	return s.create(ctx, name, cfg, hc, nc, false)
}

// create is Create; buildStep marks the record as a build's RUN
// container before it is first saved, so that no crash can leave one
// unmarked for the sweep at the next start.
func (s *Containers) create(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig, buildStep bool) (container.CreateResponse, error) {
	if cfg == nil {
		return container.CreateResponse{}, errdefs.InvalidArgumentf("config cannot be empty in order to create a container")
	}
	if hc == nil {
		hc = &container.HostConfig{}
	}
	name = strings.TrimPrefix(name, "/")
	if name != "" && !nameRE.MatchString(name) {
		return container.CreateResponse{}, errdefs.InvalidArgumentf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	if err := validateHostConfig(hc); err != nil {
		return container.CreateResponse{}, err
	}
	logWarnings, err := settleLogConfig(hc)
	if err != nil {
		return container.CreateResponse{}, err
	}
	if s.Networks != nil {
		if err := s.Networks.Validate(hc, nc); err != nil {
			return container.CreateResponse{}, err
		}
	}
	if err := validateEnv(cfg.Env); err != nil {
		return container.CreateResponse{}, err
	}
	if err := validateNamespaceModes(cfg, hc); err != nil {
		return container.CreateResponse{}, err
	}
	hostConfigDefaults(hc)
	if hc.CgroupnsMode == "" {
		hc.CgroupnsMode = s.DefaultCgroupns
	}
	if err := settleWorkingDir(cfg); err != nil {
		return container.CreateResponse{}, err
	}
	if err := (idSpace{s.SingleID}).checkUserMapped(cfg.User); err != nil {
		return container.CreateResponse{}, err
	}
	if err := validateHealthcheck(cfg.Healthcheck); err != nil {
		return container.CreateResponse{}, err
	}
	if err := validateAnnotations(hc); err != nil {
		return container.CreateResponse{}, err
	}
	if err := runtime.ValidateCapabilities(hc.CapAdd, hc.CapDrop); err != nil {
		return container.CreateResponse{}, err
	}
	warnings, err := s.cg.limitWarnings(hc.Resources)
	if err != nil {
		return container.CreateResponse{}, err
	}
	warnings = append(warnings, logWarnings...)
	maps, err := idMapsFor(hc.UsernsMode)
	if err != nil {
		return container.CreateResponse{}, err
	}
	if hc.Runtime, err = s.spec.runtimeName(hc.Runtime); err != nil {
		return container.CreateResponse{}, err
	}
	imageID, img, err := s.Images.Resolve(ctx, cfg.Image)
	if err != nil {
		return container.CreateResponse{}, err
	}
	if !strings.HasPrefix(imageID, "sha256:") {
		imageID = "sha256:" + imageID
	}
	if err := s.net.checkLinks(hc); err != nil {
		return container.CreateResponse{}, err
	}
	if err := s.recs.checkNamespaceTargets(hc); err != nil {
		return container.CreateResponse{}, err
	}
	merged := mergeImageConfig(cfg, ociImage(img))
	if host, domain, ok, err := s.recs.utsNames(hc); err != nil {
		return container.CreateResponse{}, err
	} else if ok {
		merged.Hostname, merged.Domainname = host, domain
	}
	merged.Healthcheck = mergeHealthcheck(cfg.Healthcheck, img)
	path, args := command(merged)
	if path == "" {
		return container.CreateResponse{}, errdefs.InvalidArgumentf("no command specified")
	}

	id := newID()
	name, err = s.recs.reserve(name, id) // reserved while the layer is made
	if err != nil {
		return container.CreateResponse{}, err
	}
	release := func() { s.recs.release(name) }
	if merged.Hostname == "" && hc.UTSMode == "host" {
		merged.Hostname = hostHostname()
	}
	if merged.Hostname == "" {
		merged.Hostname = id[:12]
	}
	c := &Container{
		ID: id, Name: name, Created: time.Now().UTC(), Path: path, Args: args,
		Image: cfg.Image, ImageID: imageID, ImageArch: img.Architecture, Config: merged, HostConfig: hc, NetworkingConfig: nc,
		State:  ContainerState{Status: container.StateCreated},
		exitCh: make(chan struct{}), removedCh: make(chan struct{}),
		BuildStep: buildStep,
		// Docker joins the default bridge only when the create names no
		// network: testcontainers passes its one network in the networking
		// config alone and reads the container's IP on it.
		PrimaryDisconnected: netsvc.SkipsDefaultBridge(hc, nc),
	}
	if c.MountPoints, err = s.spec.settleMounts(id, merged, hc, readOnlyNonRecursive(ctx)); err != nil {
		release()
		return container.CreateResponse{}, err
	}
	releaseVolumes := func() {
		if s.Volumes != nil {
			s.Volumes.Release(id, volumeNames(c.MountPoints), true)
		}
	}
	if err := os.MkdirAll(s.recs.dir(id), 0o700); err != nil {
		releaseVolumes()
		release()
		return container.CreateResponse{}, err
	}
	var uidMap, gidMap []specs.LinuxIDMapping
	if maps != nil {
		uidMap, gidMap = maps.UID, maps.GID
	}
	create := s.Rootfs.CreateRootfs
	if e, ok := s.Rootfs.(ephemeralRootfs); ok && hc.AutoRemove {
		create = e.CreateEphemeralRootfs
	}
	if err := create(id, imageID, uidMap, gidMap); err != nil {
		s.recs.removeDir(id)
		releaseVolumes()
		release()
		return container.CreateResponse{}, fmt.Errorf("creating the container's filesystem: %w", err)
	}
	c.mu.Lock()
	err = s.recs.save(c)
	c.mu.Unlock()
	if err != nil {
		s.recs.view.drop(id)
		if err := s.Rootfs.RemoveRootfs(id); err != nil {
			s.Log.Warn("removing the filesystem of a container whose create failed", "id", id, "err", err)
		}
		s.recs.removeDir(id)
		releaseVolumes()
		release()
		return container.CreateResponse{}, err
	}
	s.recs.add(c)
	s.Events.forContainer(c, events.ActionCreate)
	return container.CreateResponse{ID: id, Warnings: nonNil(warnings)}, nil
}

func newID() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b[:])
}

// RemoveOptions are DELETE /containers/{id}'s.
type RemoveOptions struct {
	Force, Volumes bool
}

// Remove deletes a container, its writable layer and its files.
func (s *Containers) Remove(ctx context.Context, ref string, opts RemoveOptions) error {
	c, err := s.recs.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.running() {
		if !opts.Force {
			c.mu.Unlock()
			return errdefs.Conflictf("cannot remove container \"/%s\": container is running: stop the container before removing or force remove", c.Name)
		}
		exitCh := c.exitCh
		c.ManualStop = true
		c.HostConfig.AutoRemove = false // this removal is the one
		s.lifecycle.emitKill(c, syscall.SIGKILL)
		c.mu.Unlock()
		ctl := runtime.NewCtl(s.recs.sockDir(c.ID))
		s.control.killAll(c, ctl)
		ctl.Close()
		select {
		case <-exitCh:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("container %s did not die", c.ID[:12])
		}
		c.mu.Lock()
	}
	if c.State.Status == container.StateRemoving {
		c.mu.Unlock()
		return errdefs.Conflictf("removal of container %s is already in progress", c.ID)
	}
	if c.State.Status == container.StateRestarting && !opts.Force {
		// Between two runs of its restart policy: removing it would race
		// the next start. With force the pending start sees the removal.
		c.mu.Unlock()
		return errdefs.Conflictf("cannot remove container \"/%s\": container is restarting: stop the container before removing or force remove", c.Name)
	}
	c.State.Status = container.StateRemoving
	s.recs.view.put(c, nil) // not saved: a restart finds it as it was
	c.mu.Unlock()

	// Whatever the record says, nothing of a removed container runs on:
	// its monitor may have died and taken the truth with it.
	s.cg.drop(c.ID)
	if err := s.Rootfs.RemoveRootfs(c.ID); err != nil { // it unmounts first
		c.mu.Lock()
		c.State.Status = container.StateDead
		s.recs.keep(c)
		c.mu.Unlock()
		return fmt.Errorf("removing the container's filesystem: %w", err)
	}
	if err := os.RemoveAll(s.recs.sockDir(c.ID)); err != nil {
		s.Log.Warn("removing the container's monitor sockets", "id", c.ID, "err", err)
	}
	// A monitor just exiting, or a `logs -f` reader, may still hold the
	// log open, and the space of an open file is freed only when the last
	// holder closes it: emptied first, it is free when rm returns.
	if err := os.Truncate(s.recs.logPath(c.ID), 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.Log.Warn("emptying the container's log", "id", c.ID, "err", err)
	}
	if err := os.RemoveAll(s.recs.dir(c.ID)); err != nil {
		return err
	}
	s.execs.Removed(c.ID)
	s.recs.delete(c)
	if s.Volumes != nil {
		s.Volumes.Release(c.ID, volumeNames(c.MountPoints), opts.Volumes)
	}
	c.mu.Lock()
	s.Events.forContainer(c, events.ActionDestroy)
	close(c.removedCh)
	for _, p := range c.pending {
		p.finish(nil)
	}
	c.pending = nil
	c.mu.Unlock()
	return nil
}

// Rename gives a container a new name.
func (s *Containers) Rename(ctx context.Context, ref, newName string) error {
	newName = strings.TrimPrefix(newName, "/")
	if !nameRE.MatchString(newName) {
		return errdefs.InvalidArgumentf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", newName)
	}
	c, err := s.recs.get(ref)
	if err != nil {
		return err
	}
	return s.recs.rename(c, newName, func(c *Container, oldName string) {
		if s.Networks != nil {
			s.Networks.SetNames(c.ID, c.Name, c.Config.Hostname, c.HostConfig.Links)
		}
		s.Events.forContainer(c, events.ActionRename, "oldName", "/"+oldName)
	})
}

// announce publishes action about container ref, as Docker announces
// what reads or changes a container besides its lifecycle: docker cp
// (archive-path, extract-to-dir), export, top and commit.
func (s *Containers) announce(ref string, action events.Action, attrs ...string) {
	c, err := s.recs.get(ref)
	if err != nil {
		return
	}
	c.mu.Lock()
	s.Events.forContainer(c, action, attrs...)
	c.mu.Unlock()
}

// Counts are the figures /info shows.
func (s *Containers) Counts() (total, running, paused, stopped int) { return s.recs.counts() }

func writeJSON(path string, v any) error {
	b, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600)
}

// replaceJSON is writeJSON without the fsync, for what matters only while
// the container runs (its spec, its monitor's settings): nothing runs on
// after a power cut, and the rename is what a kill -9 needs.
func replaceJSON(path string, v any) error {
	b, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	return atomicfile.Replace(path, b, 0o600)
}

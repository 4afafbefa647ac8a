package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/errdefs"
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
	Networks *Networks
	// Volumes keeps the named and anonymous volumes; nil leaves them 501.
	Volumes *Volumes
	// Cgroups is lodged's delegated cgroup v2 tree, nil without one
	// (CgroupSummary says why). CgroupLimitsWarn runs containers without
	// the limits it cannot enforce, with a warning, instead of refusing.
	Cgroups          CgroupTree
	CgroupSummary    string
	CgroupLimitsWarn bool
	// Events receives the containers' events; nil drops them.
	Events *Events
}

// Containers owns every container: their records, names and lifecycles. It
// is safe for concurrent use.
type Containers struct {
	ContainersConfig
	root, runDir string
	stateRoot    string

	mu    sync.RWMutex
	byID  map[string]*Container
	names map[string]string // name -> id

	execs execStore
}

// NewContainers loads the containers under cfg.Root and re-adopts the
// running ones: a container whose monitor still answers keeps running under
// this daemon; one that ended while no daemon ran gets its recorded exit.
func NewContainers(ctx context.Context, cfg ContainersConfig) (*Containers, error) {
	s := &Containers{ContainersConfig: cfg, root: cfg.Root, runDir: cfg.RunDir, stateRoot: filepath.Join(cfg.RunDir, "runc"),
		byID: map[string]*Container{}, names: map[string]string{}}
	if err := os.MkdirAll(s.root, 0o700); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		c, err := loadContainer(filepath.Join(s.root, e.Name(), "container.json"))
		if err != nil {
			cfg.Log.Warn("skipping unreadable container record", "dir", e.Name(), "err", err)
			continue
		}
		s.byID[c.ID] = c
		s.names[c.Name] = c.ID
		s.refVolumes(c)
		if c.running() {
			ctl := runtime.NewCtl(s.sockDir(c.ID))
			_, alive, err := ctl.Running()
			ctl.Close()
			if err == nil && alive {
				if s.Networks != nil {
					s.Networks.Readopt(ctx, c.ID)
				}
				s.startHealth(c)
				go s.watch(c)
				continue
			}
			s.recordExit(c, s.readExit(c))
		}
	}
	return s, nil
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Create makes a container from an image: it checks the request, merges
// the image's defaults, creates the writable layer and records it.
func (s *Containers) Create(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (container.CreateResponse, error) {
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
	if err := settleLogConfig(hc); err != nil {
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
	if err := runtime.ValidateCapabilities(hc.CapAdd, hc.CapDrop); err != nil {
		return container.CreateResponse{}, err
	}
	warnings, err := s.limitWarnings(hc.Resources)
	if err != nil {
		return container.CreateResponse{}, err
	}
	maps, err := idMapsFor(hc.UsernsMode)
	if err != nil {
		return container.CreateResponse{}, err
	}
	if hc.Runtime, err = s.runtimeName(hc.Runtime); err != nil {
		return container.CreateResponse{}, err
	}
	imageID, img, err := s.Images.Resolve(ctx, cfg.Image)
	if err != nil {
		return container.CreateResponse{}, err
	}
	if !strings.HasPrefix(imageID, "sha256:") {
		imageID = "sha256:" + imageID
	}
	merged := mergeImageConfig(cfg, ociImage(img))
	merged.Healthcheck = mergeHealthcheck(cfg.Healthcheck, img)
	path, args := command(merged)
	if path == "" {
		return container.CreateResponse{}, errdefs.InvalidArgumentf("no command specified")
	}

	id := newID()
	s.mu.Lock()
	if name == "" {
		name = s.randomName()
	}
	if other, ok := s.names[name]; ok {
		s.mu.Unlock()
		return container.CreateResponse{}, errdefs.Conflictf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, other)
	}
	s.names[name] = id // reserved while the layer is made
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		delete(s.names, name)
		s.mu.Unlock()
	}
	if merged.Hostname == "" {
		merged.Hostname = id[:12]
	}
	c := &Container{
		ID: id, Name: name, Created: time.Now().UTC(), Path: path, Args: args,
		Image: cfg.Image, ImageID: imageID, ImageArch: img.Architecture, Config: merged, HostConfig: hc, NetworkingConfig: nc,
		State:  ContainerState{Status: container.StateCreated},
		exitCh: make(chan struct{}), removedCh: make(chan struct{}),
	}
	if c.MountPoints, err = s.settleMounts(id, merged, hc); err != nil {
		release()
		return container.CreateResponse{}, err
	}
	releaseVolumes := func() {
		if s.Volumes != nil {
			s.Volumes.release(id, volumeNames(c.MountPoints), true)
		}
	}
	if err := os.MkdirAll(s.dir(id), 0o700); err != nil {
		releaseVolumes()
		release()
		return container.CreateResponse{}, err
	}
	var uidMap, gidMap []specs.LinuxIDMapping
	if maps != nil {
		uidMap, gidMap = maps.UID, maps.GID
	}
	if err := s.Rootfs.CreateRootfs(id, imageID, uidMap, gidMap); err != nil {
		os.RemoveAll(s.dir(id))
		releaseVolumes()
		release()
		return container.CreateResponse{}, fmt.Errorf("creating the container's filesystem: %w", err)
	}
	c.mu.Lock()
	err = s.save(c)
	c.mu.Unlock()
	if err != nil {
		s.Rootfs.RemoveRootfs(id)
		os.RemoveAll(s.dir(id))
		releaseVolumes()
		release()
		return container.CreateResponse{}, err
	}
	s.mu.Lock()
	s.byID[id] = c
	s.mu.Unlock()
	s.emit(c, events.ActionCreate)
	return container.CreateResponse{ID: id, Warnings: nonNil(warnings)}, nil
}

func newID() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Get finds a container by full ID, unique ID prefix or name.
func (s *Containers) Get(ref string) (*Container, error) {
	ref = strings.TrimPrefix(ref, "/")
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c, ok := s.byID[ref]; ok {
		return c, nil
	}
	if id, ok := s.names[ref]; ok {
		if c, ok := s.byID[id]; ok {
			return c, nil
		}
	}
	var found *Container
	if ref != "" {
		for id, c := range s.byID {
			if strings.HasPrefix(id, ref) {
				if found != nil {
					return nil, errdefs.InvalidArgumentf("multiple IDs found with provided prefix: %s", ref)
				}
				found = c
			}
		}
	}
	if found == nil {
		return nil, errdefs.NotFoundf("No such container: %s", ref)
	}
	return found, nil
}

// Start runs a created or stopped container.
func (s *Containers) Start(ctx context.Context, ref string) error {
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running() {
		return errNotModified
	}
	if c.State.Status == container.StateRemoving || c.State.Status == container.StateDead {
		return errdefs.Conflictf("container %s is marked for removal and cannot be started", c.ID)
	}
	c.ManualStop = false
	err = s.startLocked(ctx, c)
	if err != nil && c.HostConfig.AutoRemove {
		// --rm: a container that could not start goes too; the client
		// waits for its removal.
		go func() {
			if err := s.Remove(context.Background(), c.ID, RemoveOptions{Force: true, Volumes: true}); err != nil {
				s.Log.Warn("auto-remove after a failed start", "id", c.ID, "err", err)
			}
		}()
	}
	return err
}

// errNotModified tells the API to answer 304, as Docker does for starting a
// running container.
var errNotModified = errors.New("container already started")

// IsNotModified reports whether err means "nothing to do".
func IsNotModified(err error) bool { return errors.Is(err, errNotModified) }

func (s *Containers) startLocked(ctx context.Context, c *Container) (err error) {
	rootfs, err := s.Rootfs.Mount(c.ID)
	if err != nil {
		return fmt.Errorf("mounting the container's filesystem: %w", err)
	}
	defer func() {
		if err != nil {
			s.Rootfs.Unmount(c.ID)
			s.dropCgroup(c.ID)
		}
	}()
	if err := s.attachNetwork(ctx, c); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.detachNetwork(c)
		}
	}()
	dir := s.dir(c.ID)
	spec, err := s.buildSpec(c, rootfs)
	if err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, "config.json"), spec); err != nil {
		return err
	}
	os.Remove(filepath.Join(dir, "exit.json"))
	mcfg := &runtime.MonitorConfig{
		ID: c.ID, StateRoot: s.stateRoot, Bundle: dir, Runtime: s.runtimeBinary(c),
		LogPath: filepath.Join(dir, c.ID+"-json.log"), ExitPath: filepath.Join(dir, "exit.json"),
		SockDir: s.sockDir(c.ID), Tty: c.Config.Tty, OpenStdin: c.Config.OpenStdin, StdinOnce: c.Config.StdinOnce,
	}
	if cs := c.HostConfig.ConsoleSize; cs[0] > 0 && cs[1] > 0 {
		mcfg.Height, mcfg.Width = uint16(cs[0]), uint16(cs[1])
	}
	if err := s.createCgroup(c, mcfg); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, "monitor.json"), mcfg); err != nil {
		return err
	}
	pid, err := runtime.StartMonitor(ctx, filepath.Join(dir, "monitor.json"), filepath.Join(dir, "monitor.log"))
	if err != nil {
		c.State.Error = err.Error()
		c.State.ExitCode = exitCodeFor(err)
		s.save(c)
		return err
	}
	c.State = ContainerState{Status: container.StateRunning, Pid: pid, StartedAt: time.Now().UTC()}
	c.HasBeenStartedBefore = true
	s.startHealth(c)
	for _, p := range c.pending {
		s.connectAttach(c, p)
	}
	c.pending = nil
	s.emit(c, events.ActionStart)
	ctl := runtime.NewCtl(s.sockDir(c.ID))
	if err := ctl.Go(); err != nil {
		s.Log.Warn("container did not take go", "id", c.ID, "err", err)
	}
	ctl.Close()
	s.save(c)
	go s.watch(c)
	return nil
}

// exitCodeFor gives the exit code Docker reports for a start failure.
func exitCodeFor(err error) int {
	if code := runtime.FailureCode(err.Error()); code != 0 {
		return code
	}
	return 128
}

// watch waits for a running container to end and records it.
func (s *Containers) watch(c *Container) {
	st, err := runtime.Wait(context.Background(), s.sockDir(c.ID))
	if err != nil {
		// The monitor is gone: it wrote the status before it went.
		st = s.readExit(c)
	}
	s.recordExit(c, st)
}

func (s *Containers) readExit(c *Container) runtime.ExitStatus {
	st, err := runtime.ReadExit(filepath.Join(s.dir(c.ID), "exit.json"))
	if err != nil {
		return runtime.ExitStatus{ExitCode: 255, Error: "container monitor ended without recording an exit status", FinishedAt: time.Now().UTC()}
	}
	return st
}

func (s *Containers) recordExit(c *Container, st runtime.ExitStatus) {
	c.mu.Lock()
	s.detachNetwork(c) // before waiters wake: a stopped container's ports are free
	c.State.Status = container.StateExited
	c.State.Pid = 0
	c.State.ExitCode = st.ExitCode
	c.State.Error = st.Error
	c.State.OOMKilled = st.OOMKilled
	c.State.Paused = false
	c.State.FinishedAt = st.FinishedAt
	if c.exitCh != nil {
		close(c.exitCh)
	}
	c.exitCh = make(chan struct{})
	s.save(c)
	if st.OOMKilled {
		s.emit(c, events.ActionOOM)
	}
	s.emit(c, events.ActionDie, "exitCode", strconv.Itoa(st.ExitCode))
	s.Rootfs.Unmount(c.ID)
	autoRemove := c.HostConfig.AutoRemove
	restart := !autoRemove && s.shouldRestart(c, st)
	c.mu.Unlock()
	switch {
	case autoRemove:
		if err := s.Remove(context.Background(), c.ID, RemoveOptions{Volumes: true}); err != nil {
			s.Log.Warn("auto-remove failed", "id", c.ID, "err", err)
		}
	case restart:
		go s.restartAfterExit(c)
	}
}

// Stop sends the stop signal, waits up to timeout, then kills.
func (s *Containers) Stop(ctx context.Context, ref string, timeout *int, signal string) error {
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if !c.running() {
		c.mu.Unlock()
		return errNotModified
	}
	c.ManualStop = true
	s.save(c)
	exitCh := c.exitCh
	sig := syscall.SIGTERM
	if signal == "" {
		signal = c.Config.StopSignal
	}
	if signal != "" {
		if sig, err = parseSignal(signal); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	wait := 10 * time.Second
	if c.Config.StopTimeout != nil {
		wait = time.Duration(*c.Config.StopTimeout) * time.Second
	}
	if timeout != nil {
		wait = time.Duration(*timeout) * time.Second
	}
	ctl := runtime.NewCtl(s.sockDir(c.ID))
	c.mu.Unlock()
	defer ctl.Close()
	if wait != 0 {
		ctl.Signal(sig)
		c.mu.Lock()
		s.thawForSignal(c)
		c.mu.Unlock()
	}
	if wait < 0 {
		wait = 365 * 24 * time.Hour
	}
	select {
	case <-exitCh:
		return nil
	case <-time.After(wait):
	}
	s.killAll(c.ID, ctl)
	select {
	case <-exitCh:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("container %s did not stop after SIGKILL", c.ID[:12])
	}
}

// Kill sends a signal to the container's init process.
func (s *Containers) Kill(ctx context.Context, ref, signal string) error {
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if signal != "" {
		if sig, err = parseSignal(signal); err != nil {
			return err
		}
	}
	c.mu.Lock()
	running := c.running()
	if running && (sig == syscall.SIGKILL || sig == syscall.SIGTERM) {
		c.ManualStop = true
		s.save(c)
	}
	c.mu.Unlock()
	if !running {
		return errdefs.Conflictf("Cannot kill container: %s: container %s is not running", ref, c.ID)
	}
	ctl := runtime.NewCtl(s.sockDir(c.ID))
	defer ctl.Close()
	err = ctl.Signal(sig)
	c.mu.Lock()
	s.thawForSignal(c)
	c.mu.Unlock()
	return err
}

// RemoveOptions are DELETE /containers/{id}'s.
type RemoveOptions struct {
	Force, Volumes bool
}

// Remove deletes a container, its writable layer and its files.
func (s *Containers) Remove(ctx context.Context, ref string, opts RemoveOptions) error {
	c, err := s.Get(ref)
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
		c.mu.Unlock()
		ctl := runtime.NewCtl(s.sockDir(c.ID))
		s.killAll(c.ID, ctl)
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
	c.State.Status = container.StateRemoving
	c.mu.Unlock()

	if err := s.Rootfs.RemoveRootfs(c.ID); err != nil { // it unmounts first
		c.mu.Lock()
		c.State.Status = container.StateDead
		s.save(c)
		c.mu.Unlock()
		return fmt.Errorf("removing the container's filesystem: %w", err)
	}
	os.RemoveAll(s.sockDir(c.ID))
	if err := os.RemoveAll(s.dir(c.ID)); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.byID, c.ID)
	if s.names[c.Name] == c.ID {
		delete(s.names, c.Name)
	}
	s.mu.Unlock()
	if s.Volumes != nil {
		s.Volumes.release(c.ID, volumeNames(c.MountPoints), opts.Volumes)
	}
	c.mu.Lock()
	s.emit(c, events.ActionDestroy)
	close(c.removedCh)
	for _, p := range c.pending {
		p.finish(nil)
	}
	c.pending = nil
	c.mu.Unlock()
	return nil
}

// WaitFor registers a wait now and returns the function that blocks until
// it is met. The API registers before it answers with headers: the docker
// CLI starts the container as soon as it has them, and a "next-exit" taken
// after a quick container's exit would wait for an exit that never comes.
func (s *Containers) WaitFor(ref string, condition container.WaitCondition) (func(context.Context) (container.WaitResponse, error), error) {
	c, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	switch condition {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return nil, errdefs.InvalidArgumentf("invalid condition: %q", condition)
	}
	c.mu.Lock()
	exitCh, removedCh := c.exitCh, c.removedCh
	running := c.running()
	code := c.State.ExitCode
	c.mu.Unlock()
	var until <-chan struct{}
	switch {
	case condition == container.WaitConditionRemoved:
		until = removedCh
	case condition == container.WaitConditionNextExit, running:
		until = exitCh
	default: // not running already
		return func(context.Context) (container.WaitResponse, error) {
			return container.WaitResponse{StatusCode: int64(code)}, nil
		}, nil
	}
	return func(ctx context.Context) (container.WaitResponse, error) {
		select {
		case <-until:
		case <-ctx.Done():
			return container.WaitResponse{}, ctx.Err()
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		resp := container.WaitResponse{StatusCode: int64(c.State.ExitCode)}
		if c.State.Error != "" {
			resp.Error = &container.WaitExitError{Message: c.State.Error}
		}
		return resp, nil
	}, nil
}

// Rename gives a container a new name.
func (s *Containers) Rename(ctx context.Context, ref, newName string) error {
	newName = strings.TrimPrefix(newName, "/")
	if !nameRE.MatchString(newName) {
		return errdefs.InvalidArgumentf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", newName)
	}
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if other, ok := s.names[newName]; ok {
		s.mu.Unlock()
		if other == c.ID {
			return errdefs.InvalidArgumentf("Renaming a container with the same name as its current name")
		}
		return errdefs.Conflictf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", newName, other)
	}
	c.mu.Lock()
	delete(s.names, c.Name)
	s.names[newName] = c.ID
	c.Name = newName
	err = s.save(c)
	c.mu.Unlock()
	s.mu.Unlock()
	return err
}

// Restart stops (if running) and starts a container.
func (s *Containers) Restart(ctx context.Context, ref string, timeout *int, signal string) error {
	if err := s.Stop(ctx, ref, timeout, signal); err != nil && !IsNotModified(err) {
		return err
	}
	err := s.Start(ctx, ref)
	if IsNotModified(err) {
		return nil
	}
	return err
}

// All returns every container, newest first.
func (s *Containers) All() []*Container {
	s.mu.RLock()
	out := make([]*Container, 0, len(s.byID))
	for _, c := range s.byID {
		out = append(out, c)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}

// ImageUser names a container that uses the image ("sha256:..." or hex),
// or "".
func (s *Containers) ImageUser(imageID string) string {
	first, _ := s.imageUsers(imageID)
	return first
}

// ImageUsers counts the containers using the image.
func (s *Containers) ImageUsers(imageID string) int {
	_, n := s.imageUsers(imageID)
	return n
}

// imageUsers finds the containers made from an image: the first one's ID
// and how many.
func (s *Containers) imageUsers(imageID string) (first string, n int) {
	if !strings.HasPrefix(imageID, "sha256:") {
		imageID = "sha256:" + imageID
	}
	for _, c := range s.All() {
		c.mu.Lock()
		if c.ImageID == imageID {
			if n == 0 {
				first = c.ID
			}
			n++
		}
		c.mu.Unlock()
	}
	return first, n
}

// Counts are the figures /info shows.
func (s *Containers) Counts() (total, running, paused, stopped int) {
	for _, c := range s.All() {
		c.mu.Lock()
		switch {
		case c.State.Status == container.StatePaused:
			paused++
		case c.running():
			running++
		default:
			stopped++
		}
		c.mu.Unlock()
		total++
	}
	return
}

func writeJSON(path string, v any) error {
	b, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b, 0o600)
}

package daemon

import (
	"encoding/json"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/daemon/volume"
	"github.com/lodge-containers/lodge/shim"
)

// Container is one container's record. Its exported fields are what is
// persisted (container.json in its directory); the mutex guards them.
type Container struct {
	mu sync.Mutex

	ID               string
	Name             string // without the leading "/"
	Created          time.Time
	Path             string
	Args             []string
	Image            string // the reference the user gave
	ImageID          string // "sha256:..."
	ImageArch        string // the image's architecture, GOARCH names ("" when it did not say)
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
	// PrimaryDisconnected is set when the network its mode names was
	// disconnected (docker-compose does so before it connects it again
	// with its aliases).
	PrimaryDisconnected bool `json:",omitempty"`
	// MountPoints are its binds, volumes and tmpfs mounts, settled at
	// create.
	MountPoints  []volume.MountPoint `json:",omitempty"`
	State        ContainerState
	RestartCount int
	// HasBeenStartedBefore and ManualStop drive restart policies.
	HasBeenStartedBefore bool
	ManualStop           bool
	// BuildStep marks a Dockerfile RUN step's container: the build
	// removes it, and lodged removes any a crash left behind.
	BuildStep bool `json:",omitempty"`

	// Not persisted: the channels that wake waiters.
	exitCh    chan struct{} // closed at the next exit
	removedCh chan struct{} // closed when removed
	// pending attaches wait for start.
	pending []*pendingAttach
	// next is how the run that exitCh waits for ended, filled in before
	// exitCh is closed; nil until a waiter asks for it. A waiter reads it,
	// not State, which the next start may already have reset.
	next *exitResult
	// monitorGone is set while the container runs on without its monitor
	// (it died); lastSignal is the last signal lodge sent its init then,
	// the only hint of its exit code.
	monitorGone bool
	lastSignal  syscall.Signal
	// outputs are copies of the container's output pipes (or tty master)
	// from its monitor, named by streams: a monitor started when that one
	// dies takes them over (runtime.AdoptMonitor). adoptions counts the
	// monitors started so for this run.
	outputs   []*os.File
	streams   []string
	adoptions int
}

// exitResult is the exit a waiter reports.
type exitResult struct {
	code int
	err  string
}

// ContainerState is the persisted state, in Docker's terms.
type ContainerState struct {
	Status    container.ContainerState
	Pid       int
	ExitCode  int
	Error     string
	OOMKilled bool
	// Health is the healthcheck's state, nil without a healthcheck.
	Health     *container.Health `json:",omitempty"`
	StartedAt  time.Time
	FinishedAt time.Time
	Paused     bool
	// PidStartTime is the init's start time (/proc/PID/stat), which
	// tells it from a later process with the same pid when lodge must
	// reach it without its monitor.
	PidStartTime uint64 `json:",omitempty"`
}

// initProc is the container's init as recorded. Callers hold c.mu.
func (c *Container) initProc() shim.InitProc {
	return shim.InitProc{Pid: c.State.Pid, StartTime: c.State.PidStartTime}
}

// unmount unmounts a container's root filesystem where its caller has no
// one to tell: a stop, a failed start, the end of a docker cp.
func (l *Lifecycle) unmount(id string) {
	if err := l.rootfs.Unmount(id); err != nil {
		l.log.Warn("unmounting the container's filesystem", "id", id, "err", err)
	}
}

func loadContainer(path string) (*Container, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := &Container{}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, err
	}
	c.exitCh = make(chan struct{})
	c.removedCh = make(chan struct{})
	return c, nil
}

func (c *Container) running() bool {
	return c.State.Status == container.StateRunning || c.State.Status == container.StatePaused
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Package storage keeps lodge's layers, images and container filesystems
// in go.podman.io/storage under the user's data root. It chooses the
// driver (native rootless overlay, else fuse-overlayfs, else vfs) and makes
// and mounts containers' root filesystems.
package storage

import (
	"errors"
	"fmt"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage/pkg/idtools"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	cstorage "go.podman.io/storage"
	"go.podman.io/storage/types"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/paths"
)

// Options say where the store lives and how to choose its driver.
type Options struct {
	DataRoot string // <data-root>; the store is under <data-root>/storage
	RunRoot  string // runtime dir for mount bookkeeping
	Driver   string // "" chooses; overlay, fuse-overlayfs or vfs forces
	// SingleID is true when the user namespace maps only the user's own
	// id: chowns to other ids cannot work and are ignored.
	SingleID bool
	// HostUID is the user's uid outside the namespace.
	HostUID int
	Log     *slog.Logger
}

// Store is the opened store and how its driver was chosen.
type Store struct {
	cstorage.Store
	driver string // overlay, fuse-overlayfs or vfs
	reason string // why, when it is not native overlay
}

// Driver is the driver lodge uses, as `info` shows it.
func (s *Store) Driver() string { return s.driver }

// Reason explains a fallback ("" for native overlay).
func (s *Store) Reason() string { return s.reason }

// driverFile remembers the choice: images made with one driver are
// invisible to another, so a later start must not silently change it.
const driverFile = "lodge-driver"

// Open opens (creating if needed) the store and chooses its driver.
func Open(o Options) (*Store, error) {
	// go.podman.io/storage reads these to behave as under rootless Podman
	// (userxattr for overlay, no chown of the store's own files).
	_ = os.Setenv("_CONTAINERS_USERNS_CONFIGURED", "1") // fails only on a name with '=' or NUL
	_ = os.Setenv("_CONTAINERS_ROOTLESS_UID", strconv.Itoa(o.HostUID))
	graph := filepath.Join(o.DataRoot, "storage")
	if err := os.MkdirAll(graph, 0o700); err != nil {
		return nil, err
	}
	removeWriteLeftovers(graph, o.Log)
	removeStagingLeftovers(graph, o.Log)
	removeWriteLeftovers(filepath.Join(o.RunRoot, "storage"), o.Log)
	var candidates []string
	reason := ""
	switch {
	case o.Driver != "":
		candidates = []string{o.Driver}
	default:
		if b, err := os.ReadFile(filepath.Join(graph, driverFile)); err == nil {
			// The driver, then why it was chosen over overlay, if it was:
			// info keeps saying why after a restart.
			d, why, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
			candidates, reason = []string{strings.TrimSpace(d)}, strings.TrimSpace(why)
		} else {
			candidates = []string{"overlay", "fuse-overlayfs", "vfs"}
			if fs := paths.NetworkFS(graph); fs != "" {
				reason = fmt.Sprintf("the data root %s is on %s, where overlay upper directories do not work; for speed put the data root on a local disk (data-root in the config, e.g. under /tmp or /var/tmp)", o.DataRoot, fs)
				candidates = []string{"fuse-overlayfs", "vfs"}
			}
		}
	}
	var errs []string
	for _, d := range candidates {
		st, err := open(o, graph, d)
		if err == nil {
			if d != "overlay" && reason == "" && len(errs) > 0 {
				reason = strings.Join(errs, "; ")
			}
			// Without the record a later start could choose another
			// driver and lose sight of every image: no record, no store.
			if err := os.WriteFile(filepath.Join(graph, driverFile), []byte(d+"\n"+strings.ReplaceAll(reason, "\n", " ")+"\n"), 0o600); err != nil {
				_, _ = st.Shutdown(true) // the write's error is the one to report
				return nil, fmt.Errorf("recording the storage driver: %w", err)
			}
			if reason != "" && o.Log != nil {
				o.Log.Warn("storage driver fallback", "driver", d, "reason", reason)
			}
			return &Store{Store: st, driver: d, reason: reason}, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", d, err))
	}
	return nil, errdefs.Unavailablef("no storage driver works under %s: %s", graph, strings.Join(errs, "; "))
}

func open(o Options, graph, driver string) (cstorage.Store, error) {
	opts := types.StoreOptions{
		RunRoot:   filepath.Join(o.RunRoot, "storage"),
		GraphRoot: graph,
		// Containers' records are volatile (see CreateRootfs) but their
		// overlay mounts keep Docker's durability: a write the container
		// fsyncs reaches the disk, and so does the rest when it stops.
		DisableVolatile: true,
	}
	name := driver
	switch driver {
	case "overlay":
		opts.GraphDriverOptions = []string{"overlay.mountopt=" + overlayMountOpts}
	case "fuse-overlayfs":
		prog, err := exec.LookPath("fuse-overlayfs")
		if err != nil {
			return nil, errors.New("fuse-overlayfs is not installed")
		}
		if _, err := os.Stat("/dev/fuse"); err != nil {
			return nil, errors.New("/dev/fuse is missing")
		}
		name = "overlay"
		opts.GraphDriverOptions = []string{"overlay.mount_program=" + prog}
	case "vfs":
	default:
		return nil, errdefs.InvalidArgumentf("unknown storage driver %q (overlay, fuse-overlayfs or vfs)", driver)
	}
	if o.SingleID {
		opts.GraphDriverOptions = append(opts.GraphDriverOptions, strings.SplitN(name, "-", 2)[0]+".ignore_chown_errors=true")
	}
	opts.GraphDriverName = name
	return cstorage.GetStore(opts)
}

// CreateRootfs makes container id's writable layer on top of imageID. With
// maps (container ids to the store's), the container sees the image's
// files owned by the same ids as a container without them would:
// go.podman.io/storage gives it a copy of the image chowned through the
// maps (made once per image and maps, then shared).
//
// Its records go to the store's synced files: a container the user keeps
// survives a power cut, as a Docker container does.
func (s *Store) CreateRootfs(id, imageID string, uidMap, gidMap []specs.LinuxIDMapping) error {
	return s.createRootfs(id, imageID, uidMap, gidMap, false)
}

// CreateEphemeralRootfs is CreateRootfs for a container removed when it
// exits (--rm), which nothing needs after a power cut: its records go to
// the store's volatile files, replaced through a rename like the others
// (a kill -9 leaves the old record or the new) but without the fdatasync
// of the whole layers.json and containers.json (two of each on create,
// two on delete), which cost more than the rest of a run --rm together on
// a busy disk; Podman keeps --rm containers the same way. With native overlay its
// filesystem is mounted volatile, as Podman mounts a --rm container's.
// Unmounting a non-volatile overlay syncs the whole filesystem under the
// data root, which on a busy disk cost more than the rest of a
// run --rm; the price is that an fsync inside the container does not
// reach the disk, which nothing can see once the container is gone.
func (s *Store) CreateEphemeralRootfs(id, imageID string, uidMap, gidMap []specs.LinuxIDMapping) error {
	return s.createRootfs(id, imageID, uidMap, gidMap, true)
}

// overlayMountOpts are the mount options of every overlay mount; a
// container's own list replaces them, so it repeats them.
const overlayMountOpts = "nodev"

func (s *Store) createRootfs(id, imageID string, uidMap, gidMap []specs.LinuxIDMapping, ephemeral bool) error {
	opts := &cstorage.ContainerOptions{Volatile: ephemeral}
	// Not with fuse-overlayfs (mount_program), which volatile means
	// nothing to, nor vfs, which takes no mount options.
	if ephemeral && s.driver == "overlay" {
		opts.MountOpts = []string{overlayMountOpts, "volatile"}
	}
	if uidMap != nil || gidMap != nil {
		opts.IDMappingOptions = types.IDMappingOptions{
			UIDMap: toIDMap(uidMap), GIDMap: toIDMap(gidMap),
		}
	}
	_, err := s.CreateContainer(id, nil, strings.TrimPrefix(imageID, "sha256:"), "", "", opts)
	return err
}

func toIDMap(m []specs.LinuxIDMapping) []idtools.IDMap {
	out := make([]idtools.IDMap, 0, len(m))
	for _, e := range m {
		out = append(out, idtools.IDMap{ContainerID: int(e.ContainerID), HostID: int(e.HostID), Size: int(e.Size)})
	}
	return out
}

// Mount mounts container id's filesystem and returns where.
func (s *Store) Mount(id string) (string, error) { return s.Store.Mount(id, "") }

// Unmount releases one mount of container id's filesystem.
func (s *Store) Unmount(id string) error {
	_, err := s.Store.Unmount(id, false)
	if errors.Is(err, cstorage.ErrLayerNotMounted) {
		return nil
	}
	return err
}

// RemoveRootfs deletes container id's writable layer.
func (s *Store) RemoveRootfs(id string) error {
	// Forced, even when the store's count says it is not mounted: a kill -9
	// between the mount and the count's write leaves a mount the count
	// does not know, and deleting the layer under it would leak it. A mount
	// left makes DeleteContainer fail, which is returned.
	_, _ = s.Store.Unmount(id, true)
	err := s.DeleteContainer(id)
	if errors.Is(err, cstorage.ErrContainerUnknown) || errors.Is(err, cstorage.ErrNotAContainer) {
		return nil
	}
	return err
}

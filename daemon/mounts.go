package daemon

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	apivolume "github.com/moby/moby/api/types/volume"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/daemon/volume"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/runtime"
)

// Volumes is what containers need of the volume service: references by
// container ID, and where a volume's files are (*volume.Store fits; its
// lock is its own, and it never calls back into containers).
type Volumes interface {
	Acquire(name string, opts volume.Options, id string) (string, error)
	Ref(name, id string)
	Release(id string, names []string, removeAnonymous bool)
	Source(name string) (src string, fresh bool, err error)
	DataPath(name string) string
	Mountpoint(name string) string
	// Usage is every volume with its size and references, for df.
	Usage(ctx context.Context) []apivolume.Volume
}

var _ Volumes = (*volume.Store)(nil)

// settleMounts turns a new container's -v, --mount and VOLUMEs (its own and
// its image's) into its mount points, making and referencing the volumes
// they name. roNonRecursive makes read-only binds read-only at their top
// only, as for clients older than API 1.44. On error nothing stays
// referenced.
func (m *specMaker) settleMounts(id string, cfg *container.Config, hc *container.HostConfig, roNonRecursive bool) (mps []volume.MountPoint, err error) {
	for _, b := range hc.Binds {
		mp, err := volume.ParseSpec(b)
		if err != nil {
			return nil, err
		}
		mp.ReadOnlyNonRecursive = roNonRecursive && mp.ReadOnly && mp.Type == mount.TypeBind
		mps = append(mps, mp)
	}
	for _, m := range hc.Mounts {
		mp, err := volume.ParseMount(m)
		if err != nil {
			return nil, err
		}
		if roNonRecursive && mp.ReadOnly && mp.Type == mount.TypeBind {
			mp.ReadOnlyNonRecursive = true
		}
		if mp.Type == mount.TypeBind {
			// --mount does not create a missing source, -v does.
			if _, err := os.Stat(mp.Source); err != nil {
				return nil, errdefs.InvalidArgumentf("invalid mount config for type \"bind\": bind source path does not exist: %s", mp.Source)
			}
		}
		mps = append(mps, mp)
	}
	if d := hc.VolumeDriver; d != "" && d != volume.LocalDriver {
		return nil, volume.NoPlugin("", d)
	}
	seen := map[string]bool{}
	// A --tmpfs takes its path as a mount does: an image's VOLUME there
	// gets no anonymous volume, and a bind there is a duplicate.
	for dst := range hc.Tmpfs {
		if volume.CheckDestination(&dst) == nil {
			seen[dst] = true
		}
	}
	for _, mp := range mps {
		if seen[mp.Destination] {
			return nil, errdefs.InvalidArgumentf("Duplicate mount point: %s", mp.Destination)
		}
		seen[mp.Destination] = true
	}
	// --volumes-from: the other container's volumes and binds, where
	// this one mounts nothing of its own.
	for _, from := range hc.VolumesFrom {
		ref, mode, _ := strings.Cut(from, ":")
		if mode != "" && mode != "ro" && mode != "rw" {
			return nil, errdefs.InvalidArgumentf("invalid mode for volumes-from: %s", mode)
		}
		other, err := m.recs.get(ref)
		if err != nil {
			return nil, err
		}
		other.mu.Lock()
		theirs := append([]volume.MountPoint(nil), other.MountPoints...)
		other.mu.Unlock()
		for _, mp := range theirs {
			if mp.Type == mount.TypeTmpfs || seen[mp.Destination] {
				continue
			}
			if mode != "" {
				mp.ReadOnly = mode == "ro"
			}
			mp.NoCopy = true // the volume is theirs, already filled
			seen[mp.Destination] = true
			mps = append(mps, mp)
		}
	}
	// VOLUMEs nobody mounted anything on get anonymous volumes.
	var anon []string
	for dst := range cfg.Volumes {
		if volume.CheckDestination(&dst) != nil {
			return nil, errdefs.InvalidArgumentf("invalid volume %q: it must be an absolute path other than /", dst)
		}
		if !seen[dst] {
			seen[dst] = true
			anon = append(anon, dst)
		}
	}
	sort.Strings(anon)
	for _, dst := range anon {
		mps = append(mps, volume.MountPoint{Type: mount.TypeVolume, Destination: dst})
	}
	for i := range mps {
		if mp := &mps[i]; mp.Type == mount.TypeBind {
			if err := checkBindSource(mp.Source); err != nil {
				return nil, err
			}
			if err := m.bindInDataRoot(mp); err != nil {
				return nil, err
			}
		}
	}
	var acquired []string
	defer func() {
		if err != nil && m.volumes != nil {
			m.volumes.Release(id, acquired, true)
		}
	}()
	for i := range mps {
		mp := &mps[i]
		if mp.Type != mount.TypeVolume {
			continue
		}
		if m.volumes == nil {
			return nil, errdefs.NotImplementedf("volumes are not available in this daemon")
		}
		opts := volume.Options{}
		if mp.Volume != nil {
			opts = *mp.Volume
		}
		name, err := m.volumes.Acquire(mp.Name, opts, id)
		if err != nil {
			return nil, err
		}
		mp.Name = name
		acquired = append(acquired, name)
	}
	return mps, nil
}

// volumeNames are the volumes a container's mounts name.
func volumeNames(mps []volume.MountPoint) []string {
	var out []string
	for _, mp := range mps {
		if mp.Type == mount.TypeVolume && mp.Name != "" {
			out = append(out, mp.Name)
		}
	}
	return out
}

// runtimeMounts gives the runtime a container's mounts. The first start
// fills each empty volume with what the image has at its destination
// (Docker's copy-up), unless the mount says nocopy. Callers hold c.mu.
func (m *specMaker) runtimeMounts(c *Container, rootfs string) ([]runtime.Mount, error) {
	if c.MountPoints == nil && len(c.HostConfig.Binds)+len(c.HostConfig.Mounts) > 0 {
		// A record from before mounts were settled at create.
		mps, err := m.settleMounts(c.ID, &container.Config{}, c.HostConfig, true)
		if err != nil {
			return nil, err
		}
		c.MountPoints = mps
	}
	var out []runtime.Mount
	for _, mp := range c.MountPoints {
		rm := runtime.Mount{Type: "bind", Source: mp.Source, Destination: mp.Destination, ReadOnly: mp.ReadOnly}
		if mp.ReadOnly && mp.Type != mount.TypeTmpfs && !mp.ReadOnlyNonRecursive {
			// Submounts too, as Docker does: "rro" is read-only with
			// AT_RECURSIVE, where the kernel has mount_setattr.
			if err := recursiveReadOnly(); err == nil {
				rm.ReadOnly, rm.Options = false, []string{"rro"}
			} else if mp.ReadOnlyForceRecursive {
				return nil, errdefs.InvalidArgumentf("recursive read-only mount of %s: %v", mp.Destination, err)
			}
		}
		switch mp.Type {
		case mount.TypeBind:
			if mp.Propagation != "" {
				rm.Options = append(rm.Options, mp.Propagation)
			}
		case mount.TypeVolume:
			if m.volumes == nil {
				return nil, errdefs.NotImplementedf("volumes are not available in this daemon")
			}
			src, fresh, err := m.volumes.Source(mp.Name)
			if err != nil {
				return nil, err
			}
			if fresh && !mp.NoCopy && mp.Subpath == "" && !c.HasBeenStartedBefore {
				if err := copyUp(rootfs, mp.Destination, src); err != nil {
					return nil, errdefs.Class(errdefs.ErrInvalidArgument, err)
				}
			}
			if mp.Subpath != "" {
				if src, err = volume.Subpath(src, mp.Subpath); err != nil {
					return nil, err
				}
			}
			rm.Source = src
		case mount.TypeTmpfs:
			rm = runtime.Mount{Type: "tmpfs", Source: "tmpfs", Destination: mp.Destination, ReadOnly: mp.ReadOnly, Options: mp.Options}
		default:
			return nil, errdefs.NotImplementedf("mount type %q is not implemented", mp.Type)
		}
		out = append(out, rm)
	}
	return out, nil
}

// bindInDataRoot gives a bind of lodge's data root, or of a directory in
// it or above it, rslave propagation, as Docker does for its own root: a
// container must not hold private copies of the mounts lodged makes
// there (a container's root, a volume), or lodged could not unmount them.
// A propagation that would do that is refused with Docker's message.
func (m *specMaker) bindInDataRoot(mp *volume.MountPoint) error {
	root := filepath.Dir(m.root)
	if m.root == "" || !strings.HasPrefix(mp.Source, root) && !strings.HasPrefix(root, mp.Source) {
		return nil
	}
	switch mp.Propagation {
	case "":
		mp.Propagation = string(mount.PropagationRSlave)
	case string(mount.PropagationRSlave), string(mount.PropagationRShared):
	default:
		return errdefs.InvalidArgumentf(`invalid mount config: must use either propagation mode "rslave" or "rshared" when mount source is within the daemon root, daemon root: %q, bind mount source: %q, propagation: %q`, root, mp.Source, mp.Propagation)
	}
	return nil
}

// recursiveReadOnly says whether read-only mounts can include their
// submounts: mount_setattr came with Linux 5.12.
var recursiveReadOnly = sync.OnceValue(func() error {
	err := unix.MountSetattr(-1, "", 0, &unix.MountAttr{})
	if errors.Is(err, unix.ENOSYS) {
		return errors.New("rro is not supported: the kernel has no mount_setattr (older than 5.12?)")
	}
	return nil
})

// mountPointViews are a container's mounts in Docker's inspect shape.
func (m *specMaker) mountPointViews(c *Container) []container.MountPoint {
	out := []container.MountPoint{}
	for _, mp := range c.MountPoints {
		v := container.MountPoint{Type: mp.Type, Name: mp.Name, Source: mp.Source, Destination: mp.Destination,
			RW: !mp.ReadOnly, Mode: mp.Mode, Propagation: mount.Propagation(mp.Propagation)}
		switch mp.Type {
		case mount.TypeVolume:
			v.Driver = volume.LocalDriver
			if m.volumes != nil {
				v.Source = m.volumes.Mountpoint(mp.Name)
			}
			if v.Mode == "" {
				v.Mode = "z"
			}
		case mount.TypeBind:
			if v.Propagation == "" {
				v.Propagation = mount.PropagationRPrivate
			}
		}
		out = append(out, v)
	}
	return out
}

// copyUp copies what the container's root has at dst into the volume
// directory vol, owners, modes and times kept. dst is resolved inside the
// root, so an image's symlink cannot make lodged read outside it.
func copyUp(rootfs, dst, vol string) error {
	src, err := securejoin.SecureJoin(rootfs, dst)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil || !fi.IsDir() {
		return err
	}
	links := map[uint64]string{}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(vol, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if rel == "." {
			return copyOwnership(target, fi)
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		switch {
		case fi.IsDir():
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(l, target); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if st != nil && st.Nlink > 1 {
				if first, ok := links[st.Ino]; ok {
					return os.Link(first, target)
				}
				links[st.Ino] = target
			}
			if err := copyFile(p, target); err != nil {
				return err
			}
		case fi.Mode()&fs.ModeNamedPipe != 0:
			if err := unix.Mkfifo(target, 0o600); err != nil {
				return err
			}
		default:
			return nil // devices and sockets cannot be made in a user namespace
		}
		return copyOwnership(target, fi)
	})
	if err != nil {
		return errors.New("copying the image's " + dst + " into its volume: " + err.Error())
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyOwnership gives path fi's owner, mode and times. An owner the user
// namespace does not map (a single-id map) is left as it is.
func copyOwnership(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok {
		if err := os.Lchown(path, int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.EPERM) {
			return err
		}
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil
	}
	if err := os.Chmod(path, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return err
	}
	return os.Chtimes(path, fi.ModTime(), fi.ModTime())
}

// refVolumes records a loaded container's volumes as in use.
func (m *specMaker) refVolumes(c *Container) {
	if m.volumes == nil {
		return
	}
	for _, n := range volumeNames(c.MountPoints) {
		m.volumes.Ref(n, c.ID)
	}
}

// mountsVolume is ps --filter volume=: a volume's name, or any mount's
// destination. Callers hold c.mu.
func mountsVolume(c *Container, v string) bool {
	for _, mp := range c.MountPoints {
		if mp.Type == mount.TypeVolume && mp.Name == v || mp.Destination == v {
			return true
		}
	}
	return false
}

type roNonRecursiveKey struct{}

// WithReadOnlyNonRecursive marks a create as a client's older than API
// 1.44: its read-only binds are read-only at their top only, as they were
// in Docker before recursive read-only mounts.
func WithReadOnlyNonRecursive(ctx context.Context) context.Context {
	return context.WithValue(ctx, roNonRecursiveKey{}, true)
}

func readOnlyNonRecursive(ctx context.Context) bool {
	v, _ := ctx.Value(roNonRecursiveKey{}).(bool)
	return v
}

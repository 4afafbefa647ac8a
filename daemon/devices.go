package daemon

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/runtime"
)

// devices turns --device mappings into bind mounts of the host's nodes:
// nothing can mknod in a user namespace, and libcontainer's own binding
// of Linux.Devices cannot rename a node (/dev/null:/dev/extra). A
// directory brings every device under it; without "w" in the permissions
// the node is bound read-only. A missing path or one that is no device is refused with
// Docker's words rather than dropped: the container would start without
// what it asked for.
func devices(maps []container.DeviceMapping) ([]runtime.Mount, error) {
	var out []runtime.Mount
	for _, m := range maps {
		ro := m.CgroupPermissions != "" && !strings.Contains(m.CgroupPermissions, "w")
		bind := func(src, dst string) {
			out = append(out, runtime.Mount{Type: "bind", Source: src, Destination: dst, ReadOnly: ro})
		}
		dst := m.PathInContainer
		if dst == "" {
			dst = m.PathOnHost
		}
		src, err := filepath.EvalSymlinks(m.PathOnHost)
		if err == nil {
			var fi os.FileInfo
			if fi, err = os.Stat(src); err == nil && fi.IsDir() {
				err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() {
						return nil // unreadable parts of a device tree are skipped, as Docker does
					}
					if err := deviceNode(p); err == nil {
						rel, _ := filepath.Rel(src, p)
						bind(p, filepath.Join(dst, rel))
					}
					return nil
				})
				if err != nil {
					return nil, err
				}
				continue
			}
		}
		if err == nil {
			if err = deviceNode(src); err == nil {
				bind(src, dst)
				continue
			}
		}
		if errors.Is(err, fs.ErrNotExist) {
			err = unix.ENOENT
		}
		return nil, errdefs.InvalidArgumentf("error gathering device information while adding custom device %q: %v", m.PathOnHost, err)
	}
	return out, nil
}

var errNotDevice = errors.New("not a device node")

// deviceNode says whether p is a character or block device.
func deviceNode(p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return err
	}
	if m := st.Mode & unix.S_IFMT; m != unix.S_IFCHR && m != unix.S_IFBLK {
		return errNotDevice
	}
	return nil
}

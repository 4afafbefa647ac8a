// Package rootdir reads and writes files under a directory taken as a
// root, as `docker cp` and `docker export` need for a container's
// filesystem. Every path is resolved by the kernel inside that root
// (openat2 with RESOLVE_IN_ROOT): a symlink to / or a ../ in the
// container's files leads to the container's own root, never to the
// host's. Below the resolved directory, work goes on by file descriptor
// and never follows a symlink.
//
// It knows nothing of containers: the caller opens the root (a mounted
// rootfs, or /proc/PID/root of a running container) and closes it.
package rootdir

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/errdefs"
)

// Root is an open directory that paths are resolved in. It is safe for
// concurrent use; Close it when done.
type Root struct {
	f *os.File
}

// Open opens dir as a root. dir may be a magic link such as /proc/PID/root.
func Open(dir string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &Root{f: os.NewFile(uintptr(fd), dir)}, nil
}

// Close releases the root.
func (r *Root) Close() error { return r.f.Close() }

func (r *Root) fd() int { return int(r.f.Fd()) }

// OpenFile opens p inside the root for reading, its symlinks resolved as
// if the root were "/". The caller closes the file.
func (r *Root) OpenFile(p string) (*os.File, error) {
	fd, err := r.open(p, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), p), nil
}

// clean makes p absolute and clean; keepTrailing reports whether it ended
// in / or /., which asks to follow a final symlink.
func clean(p string) (string, bool) {
	follow := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || p == "."
	return path.Clean("/" + p), follow
}

// open resolves p inside the root with the given open flags.
func (r *Root) open(p string, flags int) (int, error) {
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	for {
		fd, err := unix.Openat2(r.fd(), rel, &how)
		if err == unix.EAGAIN || err == unix.EINTR { // a rename raced the lookup
			continue
		}
		if err != nil {
			return -1, pathError(p, err)
		}
		return fd, nil
	}
}

// pathError classes an error about a path the user named.
func pathError(p string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return errdefs.NotFoundf("Could not find the file %s in container", p)
	case errors.Is(err, unix.ENOTDIR):
		return errdefs.InvalidArgumentf("%s: a part of the path is not a directory", p)
	case errors.Is(err, unix.ELOOP):
		return errdefs.InvalidArgumentf("%s: too many levels of symbolic links", p)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return errdefs.PermissionDeniedf("%s: permission denied", p)
	}
	return &os.PathError{Op: "open", Path: p, Err: err}
}

// Stat is what `docker cp` learns of a path (the API's PathStat).
type Stat struct {
	Name       string
	Size       int64
	Mode       fs.FileMode
	Mtime      time.Time
	LinkTarget string // a symlink's target, resolved to an absolute path
}

// parent opens the directory holding p (p clean and not /) and returns it
// with p's last element.
func (r *Root) parent(p string) (int, string, error) {
	dir, base := path.Split(p)
	fd, err := r.open(dir, unix.O_PATH|unix.O_DIRECTORY)
	return fd, base, err
}

// Stat describes p without following a final symlink, unless p ends in /
// or /. as Docker's archive paths do.
func (r *Root) Stat(p string) (Stat, error) {
	cp, follow := clean(p)
	var st unix.Stat_t
	if follow || cp == "/" {
		fd, err := r.open(cp, unix.O_PATH)
		if err != nil {
			return Stat{}, err
		}
		defer unix.Close(fd)
		if err := unix.Fstat(fd, &st); err != nil {
			return Stat{}, err
		}
		return Stat{Name: path.Base(cp), Size: st.Size, Mode: fileMode(st.Mode), Mtime: mtime(&st)}, nil
	}
	dfd, base, err := r.parent(cp)
	if err != nil {
		return Stat{}, err
	}
	defer unix.Close(dfd)
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return Stat{}, pathError(p, err)
	}
	out := Stat{Name: base, Size: st.Size, Mode: fileMode(st.Mode), Mtime: mtime(&st)}
	if out.Mode&fs.ModeSymlink != 0 {
		target, err := readlinkat(dfd, base)
		if err != nil {
			return Stat{}, err
		}
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(cp), target)
		}
		out.LinkTarget = path.Clean(target)
	}
	return out, nil
}

func readlinkat(dfd int, name string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(dfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func mtime(st *unix.Stat_t) time.Time { return time.Unix(st.Mtim.Sec, st.Mtim.Nsec) }

// fileMode converts a stat mode to Go's.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	}
	return mode | specialBits(m)
}

// specialBits are a stat mode's setuid, setgid and sticky bits in Go's.
func specialBits(m uint32) fs.FileMode {
	var mode fs.FileMode
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

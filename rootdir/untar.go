package rootdir

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/errdefs"
)

// UntarOptions shape Untar.
type UntarOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a
	// non-directory or the other way round (the API's
	// noOverwriteDirNonDir).
	NoOverwriteDirNonDir bool
	// Owner, when set, owns every entry instead of the tar's ids.
	Owner *Owner
}

// Owner is a uid and gid in the root's user namespace.
type Owner struct{ UID, GID int }

// Untar extracts a tar stream (plain or gzip) into the directory dst. dst
// and every entry's parents are resolved inside the root, so no symlink
// can lead a write outside it; an entry naming ../ is refused. Entries get
// the tar's owners (an owner the namespace cannot map is left as root's),
// modes and times. Device nodes are refused: a user namespace cannot make
// them.
func (r *Root) Untar(ctx context.Context, dst string, rd io.Reader, opts UntarOptions) error {
	dst, _ = clean(dst)
	dfd, err := r.open(dst, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		if errors.Is(err, errdefs.ErrInvalidArgument) {
			return errdefs.InvalidArgumentf("extraction point is not a directory: %s", dst)
		}
		return err
	}
	unix.Close(dfd)
	br := bufio.NewReader(rd)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return errdefs.InvalidArgumentf("the archive is not valid gzip: %v", err)
		}
		defer func() { _ = gz.Close() }() // a reader: what it read is checked as read
		rd = gz
	} else {
		rd = br
	}
	u := &untar{r: r, dst: dst, opts: opts}
	tr := tar.NewReader(rd)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errdefs.InvalidArgumentf("the archive is not a valid tar: %v", err)
		}
		if err := u.entry(h, tr); err != nil {
			return err
		}
	}
	// Directories' times last: their entries changed them.
	for i := len(u.dirTimes) - 1; i >= 0; i-- {
		u.setTimes(u.dirTimes[i].path, u.dirTimes[i].t)
	}
	return nil
}

type untar struct {
	r        *Root
	dst      string
	opts     UntarOptions
	dirTimes []struct {
		path string
		t    time.Time
	}
}

// entryPath checks an archive name and places it under dst: no NUL, no ..
// element; a leading / is dropped, as Docker does.
func (u *untar) entryPath(name string) (string, error) {
	if strings.ContainsRune(name, 0) {
		return "", errdefs.InvalidArgumentf("archive entry %q has a NUL byte", name)
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", errdefs.InvalidArgumentf("archive entry %q leaves its directory with ../: refused", name)
		}
	}
	return path.Join(u.dst, path.Clean("/"+name)), nil
}

// dir opens directory p inside the root, making it and its missing parents.
func (u *untar) dir(p string) (int, error) {
	fd, err := u.r.open(p, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil || !errors.Is(err, errdefs.ErrNotFound) || p == "/" {
		return fd, err
	}
	pfd, err := u.dir(path.Dir(p))
	if err != nil {
		return -1, err
	}
	err = unix.Mkdirat(pfd, path.Base(p), 0o755)
	unix.Close(pfd)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("making %s: %w", p, err)
	}
	return u.r.open(p, unix.O_PATH|unix.O_DIRECTORY)
}

func (u *untar) entry(h *tar.Header, body io.Reader) error {
	p, err := u.entryPath(h.Name)
	if err != nil {
		return err
	}
	if p == u.dst {
		return nil // the directory itself ("./")
	}
	switch h.Typeflag {
	case tar.TypeChar, tar.TypeBlock:
		return errdefs.InvalidArgumentf("archive entry %q is a device node, which a user namespace cannot make", h.Name)
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeDir, tar.TypeReg, tar.TypeRegA, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo:
	default:
		return errdefs.InvalidArgumentf("archive entry %q has a type (%q) lodge does not extract", h.Name, h.Typeflag)
	}
	pfd, err := u.dir(path.Dir(p))
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	base := path.Base(p)
	isDir := h.Typeflag == tar.TypeDir
	if err := u.clear(pfd, base, p, isDir); err != nil {
		return err
	}
	mode := uint32(h.Mode & 0o7777)
	switch h.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("%s: %w", p, err)
		}
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		u.chown(fd, "", h)
		err = unix.Fchmod(fd, mode)
		unix.Close(fd)
		u.dirTimes = append(u.dirTimes, struct {
			path string
			t    time.Time
		}{p, h.ModTime})
		return err
	case tar.TypeReg, tar.TypeRegA:
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		f := os.NewFile(uintptr(fd), p)
		_, err = io.Copy(f, body)
		if err == nil {
			u.chown(fd, "", h)
			err = f.Chmod(os.FileMode(mode&0o777) | specialBits(mode))
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	case tar.TypeSymlink:
		if err := unix.Symlinkat(h.Linkname, pfd, base); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		u.chown(pfd, base, h)
	case tar.TypeLink:
		target, err := u.entryPath(h.Linkname)
		if err != nil {
			return err
		}
		tfd, err := u.r.open(path.Dir(target), unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		err = unix.Linkat(tfd, path.Base(target), pfd, base, 0)
		unix.Close(tfd)
		if err != nil {
			return fmt.Errorf("%s: hard link to %s: %w", p, h.Linkname, err)
		}
		return nil
	case tar.TypeFifo:
		if err := unix.Mknodat(pfd, base, unix.S_IFIFO|mode&0o777, 0); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		u.chown(pfd, base, h)
	}
	ts := []unix.Timespec{unix.NsecToTimespec(h.AccessTime.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
	if h.AccessTime.IsZero() {
		ts[0] = ts[1]
	}
	_ = unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW) // times are best effort (a link's may not be settable), as in Docker
	return nil
}

// clear makes room for a new entry base in pfd: an existing directory
// stays for a directory; anything else is removed, unless the options
// forbid replacing a directory by a non-directory or the reverse.
func (u *untar) clear(pfd int, base, p string, isDir bool) error {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil
	}
	wasDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if wasDir && isDir {
		return nil
	}
	if wasDir != isDir && u.opts.NoOverwriteDirNonDir {
		if wasDir {
			return errdefs.InvalidArgumentf("cannot overwrite directory %q with non-directory", p)
		}
		return errdefs.InvalidArgumentf("cannot overwrite non-directory %q with directory", p)
	}
	flags := 0
	if wasDir {
		flags = unix.AT_REMOVEDIR
	}
	if err := unix.Unlinkat(pfd, base, flags); err != nil {
		return fmt.Errorf("replacing %s: %w", p, err)
	}
	return nil
}

// chown gives an entry its owner; an id the namespace does not map is left
// to root's, as a single-id namespace must.
func (u *untar) chown(fd int, name string, h *tar.Header) {
	uid, gid := h.Uid, h.Gid
	if o := u.opts.Owner; o != nil {
		uid, gid = o.UID, o.GID
	}
	flags := unix.AT_SYMLINK_NOFOLLOW
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	_ = unix.Fchownat(fd, name, uid, gid, flags) // an unmapped id stays root's (above)
}

func (u *untar) setTimes(p string, t time.Time) {
	pfd, err := u.r.open(path.Dir(p), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return
	}
	defer unix.Close(pfd)
	ts := unix.NsecToTimespec(t.UnixNano())
	_ = unix.UtimesNanoAt(pfd, path.Base(p), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW) // best effort, as above
}

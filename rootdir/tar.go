package rootdir

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// maxDepth bounds how deep a tree Tar descends: each level holds a file
// descriptor.
const maxDepth = 512

// TarOptions shape Tar's output.
type TarOptions struct {
	// Exclude leaves out the paths (absolute, inside the root) it returns
	// true for, and what is under them.
	Exclude func(p string) bool
	// Name names the top entry instead of p's last element (for a root
	// that is itself a mount in a bigger tree).
	Name string
}

// Tar writes p (not following a final symlink, unless p ends in / or /.)
// and what is under it to w as a tar stream whose names start with p's
// last element, as Docker's archive API does; p of / with name "" gives
// names relative to the root (an export).
func (r *Root) Tar(ctx context.Context, p string, w io.Writer, opts TarOptions) error {
	cp, follow := clean(p)
	tw := tar.NewWriter(w)
	t := &tarWalk{ctx: ctx, tw: tw, links: map[[2]uint64]string{}, exclude: opts.Exclude}
	var err error
	name := path.Base(cp)
	if opts.Name != "" {
		name = opts.Name
	}
	if strings.HasSuffix(p, "/.") || p == "." {
		name = "."
	}
	switch {
	case cp == "/" && opts.Name == "" && !strings.HasSuffix(p, "."):
		err = t.dirContents(r.fd(), ".", "/", "", 0)
	case follow || cp == "/":
		fd, oerr := r.open(cp, unix.O_PATH)
		if oerr != nil {
			return oerr
		}
		err = t.entry(fd, "", cp, name, 0)
		unix.Close(fd)
	default:
		dfd, base, oerr := r.parent(cp)
		if oerr != nil {
			return oerr
		}
		err = t.entry(dfd, base, cp, name, 0)
		unix.Close(dfd)
	}
	if err != nil {
		return err
	}
	return tw.Close()
}

type tarWalk struct {
	ctx     context.Context
	tw      *tar.Writer
	links   map[[2]uint64]string // dev, inode -> first name, for hard links
	exclude func(string) bool
}

// entry writes the object name in directory dfd (or dfd itself, when name
// is "") under the tar name tn; abs is its path in the root.
func (t *tarWalk) entry(dfd int, name, abs, tn string, depth int) error {
	if err := t.ctx.Err(); err != nil {
		return err
	}
	if t.exclude != nil && t.exclude(abs) {
		return nil
	}
	var st unix.Stat_t
	flags := unix.AT_SYMLINK_NOFOLLOW
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	if err := unix.Fstatat(dfd, name, &st, flags); err != nil {
		return fmt.Errorf("%s: %w", abs, err)
	}
	h := &tar.Header{Name: tn, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid), ModTime: mtime(&st), Format: tar.FormatPAX}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		h.Typeflag, h.Name = tar.TypeDir, tn+"/"
		if err := t.tw.WriteHeader(h); err != nil {
			return err
		}
		if depth >= maxDepth {
			return fmt.Errorf("%s: more than %d directories deep", abs, maxDepth)
		}
		return t.dirContents(dfd, name, abs, tn, depth+1)
	case unix.S_IFLNK:
		target, err := readlinkat(dfd, name)
		if err != nil {
			return err
		}
		h.Typeflag, h.Linkname = tar.TypeSymlink, target
		return t.tw.WriteHeader(h)
	case unix.S_IFREG:
		key := [2]uint64{st.Dev, st.Ino}
		if st.Nlink > 1 {
			if first, ok := t.links[key]; ok {
				h.Typeflag, h.Linkname = tar.TypeLink, first
				return t.tw.WriteHeader(h)
			}
			t.links[key] = tn
		}
		return t.file(dfd, name, h, &st)
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	case unix.S_IFCHR, unix.S_IFBLK:
		h.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	default: // sockets do not travel in tars
		return nil
	}
	return t.tw.WriteHeader(h)
}

// file writes a regular file's header and content, from a descriptor
// opened without following links and checked to be the file stat saw.
func (t *tarWalk) file(dfd int, name string, h *tar.Header, st *unix.Stat_t) error {
	var fd int
	var err error
	if name == "" {
		fd, err = reopen(dfd)
	} else {
		fd, err = unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	f := os.NewFile(uintptr(fd), h.Name)
	defer f.Close()
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		return err
	}
	if now.Ino != st.Ino || now.Dev != st.Dev || now.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s changed while it was read", h.Name)
	}
	h.Typeflag, h.Size = tar.TypeReg, now.Size
	if err := t.tw.WriteHeader(h); err != nil {
		return err
	}
	n, err := io.Copy(t.tw, io.LimitReader(f, now.Size))
	if err != nil {
		return err
	}
	if n < now.Size { // it shrank: pad, the header is out
		_, err = io.CopyN(t.tw, zeros{}, now.Size-n)
	}
	return err
}

// reopen opens for reading the file an O_PATH descriptor names, through
// its /proc/self/fd entry (the kernel's own reference, no path lookup).
func reopen(fd int) (int, error) {
	return unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// dirContents writes the entries of the directory name in dfd, sorted.
func (t *tarWalk) dirContents(dfd int, name, abs, tn string, depth int) error {
	flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	var fd int
	var err error
	if name == "" {
		fd, err = reopen(dfd)
	} else {
		fd, err = unix.Openat(dfd, name, flags, 0)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", abs, err)
	}
	d := os.NewFile(uintptr(fd), abs)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("%s: %w", abs, err)
	}
	sort.Strings(names)
	for _, n := range names {
		child := n
		if tn != "" {
			child = tn + "/" + n
		}
		if err := t.entry(fd, n, path.Join(abs, n), child, depth); err != nil {
			return err
		}
	}
	return nil
}

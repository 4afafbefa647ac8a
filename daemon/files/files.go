package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/rootdir"
)

// Containers is what moving files needs of the container service. Each
// method reads a container's record under its own lock.
type Containers interface {
	// Target reads container ref's record; an unknown one is
	// errdefs.ErrNotFound.
	Target(ref string) (Target, error)
	// MountedRoot mounts container id's filesystem and opens it; done
	// releases both.
	MountedRoot(id string) (r *rootdir.Root, done func(), err error)
	// RootOwner is the container's root as lodged's namespace sees it,
	// who owns what docker cp makes.
	RootOwner(id string) (rootdir.Owner, error)
}

// Target is what a copy needs of a container.
type Target struct {
	ID  string
	Pid int // its init's, while it runs; 0 otherwise
	// Mounts are its binds and volumes, with their directories here.
	Mounts         []Mount
	ReadonlyRootfs bool
}

// Mount is a bind or volume of a container: Source, a directory of
// lodged's, is mounted at Destination.
type Mount struct {
	Source, Destination string
}

// Service moves files in and out of containers: docker cp and export. It
// holds no state of its own and is safe for concurrent use.
type Service struct {
	containers Containers
}

// New makes the files service over containers.
func New(containers Containers) *Service { return &Service{containers: containers} }

// withRoot opens a container's files as a root for fn, with p's path in
// it: a running container's own view (/proc/PID/root: its volumes and
// binds included); for a stopped one, the volume or bind that holds p
// (inMount), else its filesystem, mounted for the while.
func (s *Service) withRoot(ref, p string, fn func(t Target, r *rootdir.Root, p string, inMount bool) error) error {
	t, err := s.containers.Target(ref)
	if err != nil {
		return err
	}
	p = absPath(p)
	if t.Pid > 0 {
		if r, err := rootdir.Open(fmt.Sprintf("/proc/%d/root", t.Pid)); err == nil {
			defer r.Close()
			return fn(t, r, p, false)
		}
		// It ended meanwhile: its filesystem is still there.
	}
	if src, inner, ok := mountFor(t.Mounts, p); ok {
		r, err := rootdir.Open(src)
		if err != nil {
			return err
		}
		defer r.Close()
		return fn(t, r, inner, true)
	}
	r, done, err := s.containers.MountedRoot(t.ID)
	if err != nil {
		return err
	}
	defer done()
	return fn(t, r, p, false)
}

// mountFor finds the mount of mounts whose destination holds p (the
// deepest, by the path's words), and p's path inside it.
func mountFor(mounts []Mount, p string) (src, inner string, ok bool) {
	clean := path.Clean(p)
	best := ""
	for _, m := range mounts {
		d := m.Destination
		if (clean == d || strings.HasPrefix(clean, d+"/")) && len(d) > len(best) {
			best, src = d, m.Source
		}
	}
	if best == "" || src == "" {
		return "", "", false
	}
	inner = "/" + strings.TrimPrefix(strings.TrimPrefix(clean, best), "/")
	// Docker's trailing / and /. mean "follow" and "the contents".
	if strings.HasSuffix(p, "/.") {
		inner = strings.TrimSuffix(inner, "/") + "/."
	} else if strings.HasSuffix(p, "/") && inner != "/" {
		inner += "/"
	}
	return src, inner, true
}

// pathStat is rootdir's Stat in the API's shape.
func pathStat(st rootdir.Stat) container.PathStat {
	return container.PathStat{Name: st.Name, Size: st.Size, Mode: st.Mode, Mtime: st.Mtime, LinkTarget: st.LinkTarget}
}

// StatPath is HEAD /containers/{id}/archive: what is at p in the
// container (a final symlink not followed).
func (s *Service) StatPath(ctx context.Context, ref, p string) (container.PathStat, error) {
	var out container.PathStat
	err := s.withRoot(ref, p, func(_ Target, r *rootdir.Root, inner string, inMount bool) error {
		st, err := r.Stat(inner)
		out = pathStat(st)
		if inMount {
			out.Name = path.Base(path.Clean(absPath(p)))
		}
		return err
	})
	return out, inContainer(err, ref, p)
}

// inContainer names the container and the path as the user gave them in
// a path error, as Docker does ("Could not find the file /x in container
// web"): rootdir knows only the path inside the root it opened, which for
// a volume or bind is not the container's.
func inContainer(err error, ref, p string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errdefs.ErrNotFound) && strings.HasPrefix(err.Error(), "Could not find the file"):
		return errdefs.NotFoundf("Could not find the file %s in container %s", p, ref)
	case errors.Is(err, errdefs.ErrInvalidArgument) && strings.HasPrefix(err.Error(), "extraction point is not a directory"):
		return errdefs.InvalidArgumentf("extraction point is not a directory: %s in container %s", p, ref)
	}
	return err
}

// absPath reads an archive path as Docker does: relative to the
// container's root, a trailing / or /. kept.
func absPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}

// ArchivePath is GET /containers/{id}/archive: head is called with p's
// stat before the tar of p is written to the writer it returns, so that
// the API can send the stat header (and a missing path its 404) first.
func (s *Service) ArchivePath(ctx context.Context, ref, p string, head func(container.PathStat) (io.Writer, error)) error {
	return inContainer(s.withRoot(ref, p, func(_ Target, r *rootdir.Root, inner string, inMount bool) error {
		st, err := r.Stat(inner)
		if err != nil {
			return err
		}
		ps, opts := pathStat(st), rootdir.TarOptions{}
		if !inMount {
			opts.Exclude = kernelFiles(path.Clean(inner))
		} else { // named as in the container, not as in the mount
			ps.Name = path.Base(path.Clean(absPath(p)))
			opts.Name = ps.Name
		}
		w, err := head(ps)
		if err != nil {
			return err
		}
		return r.Tar(ctx, inner, w, opts)
	}), ref, p)
}

// ExtractOptions are PUT /containers/{id}/archive's.
type ExtractOptions struct {
	NoOverwriteDirNonDir bool
	CopyUIDGID           bool
}

// ExtractToPath is PUT /containers/{id}/archive: the tar in rd is
// unpacked into the directory p inside the container, never outside it.
// What it makes is root's (the user's own id outside), or with CopyUIDGID
// (docker cp -a) owned as the tar says.
func (s *Service) ExtractToPath(ctx context.Context, ref, p string, rd io.Reader, opts ExtractOptions) error {
	return inContainer(s.withRoot(ref, p, func(t Target, r *rootdir.Root, p string, inMount bool) error {
		// Read again now that its root is open: a read-only root's
		// volumes stay writable: a running container's kernel tells
		// them apart, a stopped one's mounts are found by path.
		now, err := s.containers.Target(t.ID)
		if err != nil {
			return err
		}
		if now.ReadonlyRootfs && now.Pid == 0 && !inMount {
			return errdefs.Conflictf("container rootfs is marked read-only")
		}
		uo := rootdir.UntarOptions{NoOverwriteDirNonDir: opts.NoOverwriteDirNonDir}
		if !opts.CopyUIDGID {
			// docker cp makes what it copies in root's, unless -a.
			root, err := s.containers.RootOwner(t.ID)
			if err != nil {
				return err
			}
			uo.Owner = &root
		}
		err = r.Untar(ctx, p, rd, uo)
		if errors.Is(err, unix.EROFS) {
			return errdefs.Conflictf("%s is on a read-only filesystem in the container", p)
		}
		return err
	}), ref, p)
}

// Export is GET /containers/{id}/export: the container's filesystem as a
// tar, its mounts left out.
func (s *Service) Export(ctx context.Context, ref string, w io.Writer) error {
	t, err := s.containers.Target(ref)
	if err != nil {
		return err
	}
	r, done, err := s.containers.MountedRoot(t.ID)
	if err != nil {
		return err
	}
	defer done()
	return r.Tar(ctx, "/", w, rootdir.TarOptions{})
}

// kernelFiles leaves out what is under a running container's /proc and
// /sys when a copy only passes through them (a copy of / would read the
// kernel's files, endless some of them); asked for by name, they come.
func kernelFiles(asked string) func(string) bool {
	return func(p string) bool {
		for _, k := range []string{"/proc/", "/sys/"} {
			if strings.HasPrefix(p, k) && !strings.HasPrefix(asked+"/", k) {
				return true
			}
		}
		return false
	}
}

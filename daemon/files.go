package daemon

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/daemon/volume"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/rootdir"
)

// LayerReader reads a container's writable layer. A RootfsStore that is
// one gives containers diff and commit.
type LayerReader interface {
	Changes(id string) ([]container.FilesystemChange, error)
	// Diff is the layer as an uncompressed tar; the caller closes it.
	Diff(id string) (io.ReadCloser, error)
}

// withRoot opens a container's files as a root for fn, with p's path in
// it: a running container's own view (/proc/PID/root: its volumes and
// binds included); for a stopped one, the volume or bind that holds p
// (inMount), else its filesystem, mounted for the while.
func (s *Containers) withRoot(ref, p string, fn func(c *Container, r *rootdir.Root, p string, inMount bool) error) error {
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	p = absPath(p)
	c.mu.Lock()
	pid := 0
	if c.running() {
		pid = c.State.Pid
	}
	mps := c.MountPoints
	c.mu.Unlock()
	if pid > 0 {
		if r, err := rootdir.Open(fmt.Sprintf("/proc/%d/root", pid)); err == nil {
			defer r.Close()
			return fn(c, r, p, false)
		}
		// It ended meanwhile: its filesystem is still there.
	}
	if src, inner, ok := s.mountFor(mps, p); ok {
		r, err := rootdir.Open(src)
		if err != nil {
			return err
		}
		defer r.Close()
		return fn(c, r, inner, true)
	}
	r, done, err := s.mountedRoot(c.ID)
	if err != nil {
		return err
	}
	defer done()
	return fn(c, r, p, false)
}

// mountFor finds the volume or bind of mps whose destination holds p
// (the deepest, by the path's words), and p's path inside it.
func (s *Containers) mountFor(mps []volume.MountPoint, p string) (src, inner string, ok bool) {
	clean := path.Clean(p)
	best := ""
	for _, mp := range mps {
		d := mp.Destination
		if (clean == d || strings.HasPrefix(clean, d+"/")) && len(d) > len(best) {
			var s2 string
			switch {
			case mp.Type == mount.TypeBind:
				s2 = mp.Source
			case mp.Type == mount.TypeVolume && s.Volumes != nil:
				s2 = s.Volumes.DataPath(mp.Name)
			default:
				continue
			}
			best, src = d, s2
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

// mountedRoot mounts container id's filesystem and opens it; done
// releases both.
func (s *Containers) mountedRoot(id string) (r *rootdir.Root, done func(), err error) {
	dir, err := s.Rootfs.Mount(id)
	if err != nil {
		return nil, nil, fmt.Errorf("mounting the container's filesystem: %w", err)
	}
	if r, err = rootdir.Open(dir); err != nil {
		s.unmount(id)
		return nil, nil, err
	}
	return r, func() { r.Close(); s.unmount(id) }, nil
}

// pathStat is rootdir's Stat in the API's shape.
func pathStat(st rootdir.Stat) container.PathStat {
	return container.PathStat{Name: st.Name, Size: st.Size, Mode: st.Mode, Mtime: st.Mtime, LinkTarget: st.LinkTarget}
}

// StatPath is HEAD /containers/{id}/archive: what is at p in the
// container (a final symlink not followed).
func (s *Containers) StatPath(ctx context.Context, ref, p string) (container.PathStat, error) {
	var out container.PathStat
	err := s.withRoot(ref, p, func(_ *Container, r *rootdir.Root, inner string, inMount bool) error {
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
func (s *Containers) ArchivePath(ctx context.Context, ref, p string, head func(container.PathStat) (io.Writer, error)) error {
	return inContainer(s.withRoot(ref, p, func(_ *Container, r *rootdir.Root, inner string, inMount bool) error {
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
func (s *Containers) ExtractToPath(ctx context.Context, ref, p string, rd io.Reader, opts ExtractOptions) error {
	return inContainer(s.withRoot(ref, p, func(c *Container, r *rootdir.Root, p string, inMount bool) error {
		c.mu.Lock()
		// A read-only root's volumes stay writable: a running
		// container's kernel tells them apart, a stopped one's mounts
		// are found by path.
		ro, running := c.HostConfig.ReadonlyRootfs, c.running()
		c.mu.Unlock()
		if ro && !running && !inMount {
			return errdefs.Conflictf("container rootfs is marked read-only")
		}
		uo := rootdir.UntarOptions{NoOverwriteDirNonDir: opts.NoOverwriteDirNonDir}
		if !opts.CopyUIDGID {
			// docker cp makes what it copies in root's, unless -a.
			root, err := containerRoot(c)
			if err != nil {
				return err
			}
			uo.Owner = &root
		}
		err := r.Untar(ctx, p, rd, uo)
		if errors.Is(err, unix.EROFS) {
			return errdefs.Conflictf("%s is on a read-only filesystem in the container", p)
		}
		return err
	}), ref, p)
}

// Export is GET /containers/{id}/export: the container's filesystem as a
// tar, its mounts left out.
func (s *Containers) Export(ctx context.Context, ref string, w io.Writer) error {
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	r, done, err := s.mountedRoot(c.ID)
	if err != nil {
		return err
	}
	defer done()
	return r.Tar(ctx, "/", w, rootdir.TarOptions{})
}

// runtimeMade are the paths the runtime makes in a container's layer to
// mount its own files on; Docker keeps them in an init layer, so they are
// no change of the container's, and a commit leaves them out.
var runtimeMade = []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev", "/proc", "/sys", initInContainer}

func isRuntimeMade(p string) bool {
	for _, m := range runtimeMade {
		if p == m || strings.HasPrefix(p, m+"/") {
			return true
		}
	}
	return false
}

// Changes is GET /containers/{id}/changes (docker diff).
func (s *Containers) Changes(ctx context.Context, ref string) ([]container.FilesystemChange, error) {
	c, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	lr, ok := s.Rootfs.(LayerReader)
	if !ok {
		return nil, errdefs.NotImplementedf("this storage cannot list a container's changes")
	}
	all, err := lr.Changes(c.ID)
	if err != nil {
		return nil, err
	}
	return filterChanges(all), nil
}

// filterChanges drops the runtime's own paths, and a directory changed
// only by them.
func filterChanges(all []container.FilesystemChange) []container.FilesystemChange {
	kept := []container.FilesystemChange{}
	dropped := map[string]bool{} // ancestors of what was dropped
	for _, ch := range all {
		if isRuntimeMade(ch.Path) {
			for d := path.Dir(ch.Path); d != "/"; d = path.Dir(d) {
				dropped[d] = true
			}
			continue
		}
		kept = append(kept, ch)
	}
	out := kept[:0]
	for _, ch := range kept {
		if ch.Kind == container.ChangeModify && dropped[ch.Path] && !hasDescendant(kept, ch.Path) {
			continue
		}
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func hasDescendant(chs []container.FilesystemChange, dir string) bool {
	for _, ch := range chs {
		if strings.HasPrefix(ch.Path, dir+"/") {
			return true
		}
	}
	return false
}

// filterLayer copies a layer tar without the runtime's own paths.
func filterLayer(w io.Writer, r io.Reader) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		if isRuntimeMade(path.Clean("/" + h.Name)) {
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// containerRoot is the container's root as lodged's namespace sees it:
// lodged's own root, or under keep-id the ids the container's 0 maps to.
func containerRoot(c *Container) (rootdir.Owner, error) {
	c.mu.Lock()
	mode := c.HostConfig.UsernsMode
	c.mu.Unlock()
	maps, err := idMapsFor(mode)
	if err != nil || maps == nil {
		return rootdir.Owner{}, err
	}
	root := rootdir.Owner{}
	for _, m := range maps.UID {
		if m.ContainerID == 0 {
			root.UID = int(m.HostID)
		}
	}
	for _, m := range maps.GID {
		if m.ContainerID == 0 {
			root.GID = int(m.HostID)
		}
	}
	return root, nil
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

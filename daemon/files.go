package daemon

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/lodge-containers/lodge/daemon/files"
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

// mountedRoot mounts container id's filesystem and opens it; done
// releases both.
func (s *Containers) mountedRoot(id string) (r *rootdir.Root, done func(), err error) {
	dir, err := s.Rootfs.Mount(id)
	if err != nil {
		return nil, nil, fmt.Errorf("mounting the container's filesystem: %w", err)
	}
	if r, err = rootdir.Open(dir); err != nil {
		s.lifecycle.unmount(id)
		return nil, nil, err
	}
	return r, func() { r.Close(); s.lifecycle.unmount(id) }, nil
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
	c, err := s.recs.get(ref)
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

// ExtractOptions are PUT /containers/{id}/archive's (files.ExtractOptions).
type ExtractOptions = files.ExtractOptions

// filesHost is what docker cp and export (daemon/files) see of the
// containers.
type filesHost struct{ s *Containers }

var _ files.Containers = filesHost{}

// Target reads what a copy needs from container ref's record: its
// running init, and its binds and volumes as directories of lodged's.
func (h filesHost) Target(ref string) (files.Target, error) {
	c, err := h.s.recs.get(ref)
	if err != nil {
		return files.Target{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := files.Target{ID: c.ID, ReadonlyRootfs: c.HostConfig.ReadonlyRootfs}
	if c.running() {
		t.Pid = c.State.Pid
	}
	for _, mp := range c.MountPoints {
		switch {
		case mp.Type == mount.TypeBind:
			t.Mounts = append(t.Mounts, files.Mount{Source: mp.Source, Destination: mp.Destination})
		case mp.Type == mount.TypeVolume && h.s.Volumes != nil:
			t.Mounts = append(t.Mounts, files.Mount{Source: h.s.Volumes.DataPath(mp.Name), Destination: mp.Destination})
		}
	}
	return t, nil
}

// MountedRoot mounts and opens container id's filesystem.
func (h filesHost) MountedRoot(id string) (*rootdir.Root, func(), error) { return h.s.mountedRoot(id) }

// RootOwner is container id's root in lodged's namespace.
func (h filesHost) RootOwner(id string) (rootdir.Owner, error) {
	c, err := h.s.recs.get(id)
	if err != nil {
		return rootdir.Owner{}, err
	}
	return containerRoot(c)
}

package storage

import (
	"io"

	"github.com/moby/moby/api/types/container"
	"go.podman.io/storage/pkg/archive"

	"github.com/lodge-containers/lodge/internal/layerdiff"
)

// Changes lists what container id changed against its image: added,
// modified and deleted paths of its writable layer.
func (s *Store) Changes(id string) ([]container.FilesystemChange, error) {
	c, err := s.Container(id)
	if err != nil {
		return nil, err
	}
	chs, err := s.Store.Changes("", c.LayerID)
	if err != nil {
		return nil, err
	}
	out := make([]container.FilesystemChange, 0, len(chs))
	for _, ch := range chs {
		k := container.ChangeModify
		switch ch.Kind {
		case archive.ChangeAdd:
			k = container.ChangeAdd
		case archive.ChangeDelete:
			k = container.ChangeDelete
		}
		out = append(out, container.FilesystemChange{Path: ch.Path, Kind: k})
	}
	return out, nil
}

// Diff is container id's writable layer as an uncompressed layer tar
// (whiteouts for deletions), to commit as an image layer. Close it.
func (s *Store) Diff(id string) (io.ReadCloser, error) {
	c, err := s.Container(id)
	if err != nil {
		return nil, err
	}
	return layerdiff.Open(s.Store, c.LayerID)
}

// LayerSize is the size of container id's writable layer.
func (s *Store) LayerSize(id string) (int64, error) {
	c, err := s.Container(id)
	if err != nil {
		return 0, err
	}
	return s.Store.DiffSize("", c.LayerID)
}

// RootfsSize is the size of container id's writable layer and of its
// whole filesystem (that layer and its image's layers), Docker's SizeRw
// and SizeRootFs.
func (s *Store) RootfsSize(id string) (rw, rootfs int64, err error) {
	c, err := s.Container(id)
	if err != nil {
		return 0, 0, err
	}
	if rw, err = s.Store.DiffSize("", c.LayerID); err != nil {
		return 0, 0, err
	}
	l, err := s.Store.Layer(c.LayerID)
	if err != nil {
		return 0, 0, err
	}
	rootfs = rw
	for parent := l.Parent; parent != ""; {
		pl, err := s.Store.Layer(parent)
		if err != nil {
			return 0, 0, err
		}
		size := pl.UncompressedSize
		if size <= 0 {
			if size, err = s.Store.DiffSize(pl.Parent, pl.ID); err != nil {
				return 0, 0, err
			}
		}
		rootfs += size
		parent = pl.Parent
	}
	return rw, rootfs, nil
}

// DriverData is Docker's GraphDriver of container id: the driver's name
// and the directories of its writable layer (overlay: LowerDir, UpperDir,
// WorkDir, MergedDir, as Docker's overlay2 gives them).
func (s *Store) DriverData(id string) (name string, data map[string]string, err error) {
	c, err := s.Container(id)
	if err != nil {
		return "", nil, err
	}
	d, err := s.Store.GraphDriver()
	if err != nil {
		return "", nil, err
	}
	if data, err = d.Metadata(c.LayerID); err != nil {
		return "", nil, err
	}
	if data == nil {
		data = map[string]string{}
	}
	return d.String(), data, nil
}

package storage

import (
	"log/slog"
	"os"
	"path/filepath"
)

// removeWriteLeftovers deletes the temporary files go.podman.io/storage
// writes its layer, image and container records through (.tmp-NAME next to
// NAME, renamed over it): a kill -9 between the write and the rename leaves
// one for good. The caller holds the daemon lock, so no writer is live.
func removeWriteLeftovers(graph string, log *slog.Logger) {
	left, _ := filepath.Glob(filepath.Join(graph, "*", ".tmp-*"))
	for _, p := range left {
		if err := os.Remove(p); err == nil && log != nil {
			log.Info("removed a record half-written before a crash", "path", p)
		}
	}
}

// removeStagingLeftovers deletes the layers a kill -9 left half-unpacked
// in the overlay driver's staging directory (image.stageLayer unpacks
// there before the layer goes into the store). The driver itself only
// prunes them when the store shuts down cleanly. The caller holds the
// daemon lock, so nothing is unpacking.
func removeStagingLeftovers(graph string, log *slog.Logger) {
	left, _ := filepath.Glob(filepath.Join(graph, "overlay", "staging", "*"))
	for _, p := range left {
		if err := os.RemoveAll(p); err != nil {
			if log != nil {
				log.Warn("a layer half-unpacked before a crash cannot be removed", "path", p, "err", err)
			}
		} else if log != nil {
			log.Info("removed a layer half-unpacked before a crash", "path", p)
		}
	}
}

// RemoveOrphanLayers deletes the layers no image or container uses, even
// through a child: what a kill -9 leaves between storing a pull's, a
// load's or a commit's layer and recording the image on it. lodged calls it
// at start, before it serves anything, so no layer is being made; every
// layer lodge makes belongs to an image or a container once the operation
// that made it has ended. It returns how many went.
func (s *Store) RemoveOrphanLayers(log *slog.Logger) int {
	layers, err := s.Store.Layers()
	if err != nil {
		return 0
	}
	imgs, err := s.Store.Images()
	if err != nil {
		return 0
	}
	ctrs, err := s.Store.Containers()
	if err != nil {
		return 0
	}
	parent := map[string]string{}
	for _, l := range layers {
		parent[l.ID] = l.Parent
	}
	used := map[string]bool{}
	use := func(id string) {
		for ; id != "" && !used[id]; id = parent[id] {
			used[id] = true
		}
	}
	for _, img := range imgs {
		use(img.TopLayer)
		for _, m := range img.MappedTopLayers {
			use(m)
		}
	}
	for _, c := range ctrs {
		use(c.LayerID)
	}
	// Children before parents: an unused layer's children are unused too,
	// and the store refuses to delete a layer that has children.
	removed := 0
	for progress := true; progress; {
		progress = false
		children := map[string]int{}
		for _, p := range parent {
			if p != "" {
				children[p]++
			}
		}
		for id := range parent {
			if used[id] || children[id] > 0 {
				continue
			}
			if err := s.Store.DeleteLayer(id); err != nil {
				if log != nil {
					log.Warn("a layer no image or container uses could not be removed", "layer", id, "err", err)
				}
				used[id] = true // leave it, and its parents
				use(parent[id])
				continue
			}
			if log != nil {
				log.Warn("removed a layer a crash left without its image", "layer", id)
			}
			delete(parent, id)
			removed++
			progress = true
		}
	}
	return removed
}

package image

import (
	"errors"

	imagetypes "github.com/moby/moby/api/types/image"
	cstorage "go.podman.io/storage"
)

// Parents and children: an image made locally (a build step, a commit)
// records the image it was made on. As in Docker, an untagged parent is
// an intermediate image: `docker images` hides it, prune leaves it while
// a child needs it, and removing the child removes it too.

// ParentOf is image ref's parent ("sha256:...") or "" (pulled, loaded,
// imported, or unknown).
func (s *Service) ParentOf(ref string) string {
	img, err := s.lookup(ref)
	if err != nil {
		return ""
	}
	if p := readMeta(img).Parent; p != "" {
		return "sha256:" + p
	}
	return ""
}

// children counts, for each image ID, the images that name it parent.
func children(imgs []cstorage.Image) map[string]int {
	out := map[string]int{}
	for i := range imgs {
		if p := readMeta(&imgs[i]).Parent; p != "" {
			out[p]++
		}
	}
	return out
}

// removeParents deletes the untagged ancestors of an image just deleted,
// nearest first, stopping at one that has a name, another child, or a
// container. Callers hold s.mu.
func (s *Service) removeParents(parent string, inUse func(id string) string) []imagetypes.DeleteResponse {
	var out []imagetypes.DeleteResponse
	for parent != "" {
		img, err := s.store.Image(parent)
		if err != nil || len(img.Names) > 0 || (inUse != nil && inUse(img.ID) != "") {
			break
		}
		imgs, err := s.store.Images()
		if err != nil || children(imgs)[img.ID] > 0 {
			break
		}
		next := readMeta(img).Parent
		if _, err := s.store.DeleteImage(img.ID, true); err != nil {
			break
		}
		out = append(out, imagetypes.DeleteResponse{Deleted: "sha256:" + img.ID})
		parent = next
	}
	return out
}

// RemoveUnused deletes those of ids (hex or "sha256:...") that have no
// name, no child and no container (inUse names one): the build cache's
// images, when its index is pruned. An image of ids whose only child is
// another of ids goes once that child has gone. It returns the IDs deleted and the space freed.
func (s *Service) RemoveUnused(ids []string, inUse func(id string) string) ([]string, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	var freed uint64
	var errs []error
	pending := map[string]bool{}
	for _, id := range ids {
		if img, err := s.lookup(id); err == nil {
			pending[img.ID] = true
		}
	}
	// A chain of cache images frees from its end: go round until a pass
	// deletes nothing.
	for progress := true; progress; {
		progress = false
		imgs, err := s.store.Images()
		if err != nil {
			return out, freed, err
		}
		kids := children(imgs)
		for i := range imgs {
			img := &imgs[i]
			if !pending[img.ID] || len(img.Names) > 0 || kids[img.ID] > 0 || inUse(img.ID) != "" {
				continue
			}
			size := s.size(img)
			if _, err := s.store.DeleteImage(img.ID, true); err != nil {
				if !errors.Is(err, cstorage.ErrImageUsedByContainer) {
					errs = append(errs, err)
				}
				delete(pending, img.ID)
				continue
			}
			delete(pending, img.ID)
			freed += uint64(size)
			out = append(out, "sha256:"+img.ID)
			progress = true
		}
	}
	return out, freed, errors.Join(errs...)
}

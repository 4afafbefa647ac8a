package image

import (
	"context"
	"encoding/json"
	"io"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	cstorage "go.podman.io/storage"
)

// What a Dockerfile build needs from the image store: images made on a
// parent from a layer tar or from a config alone. The builder writes each
// config whole (history included), so these only add the layer.

// PutImage stores diff (an uncompressed layer tar) as a layer on image
// parentID ("" is scratch: no layers) and records an image with config
// cfg, the layer's diff ID appended to cfg.RootFS. It returns the image's
// ID (hex). The image records parentID as its parent.
func (s *Service) PutImage(ctx context.Context, parentID string, diff io.Reader, cfg dockerspec.DockerOCIImage) (string, error) {
	parent, err := s.parentImage(parentID)
	if err != nil {
		return "", err
	}
	return s.putLayerImage(parent, diff, cfg, nil, nil, createdOf(cfg))
}

// ConfigImage records an image with parentID's layers and config cfg,
// no layer of its own. The ID is the config's digest, so the same config
// gives the same image.
func (s *Service) ConfigImage(ctx context.Context, parentID string, cfg dockerspec.DockerOCIImage) (string, error) {
	parent, err := s.parentImage(parentID)
	if err != nil {
		return "", err
	}
	top, pid := "", ""
	if parent != nil {
		top, pid = parent.TopLayer, parent.ID
	}
	cfg.RootFS.Type = "layers"
	raw, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	id, _, err := s.createImageOn(raw, top, pid, nil, nil, "", createdOf(cfg))
	return id, err
}

// MountImage mounts image id's filesystem read-only and returns where;
// UnmountImage releases it. An image without layers has no filesystem:
// the caller gives an empty directory instead (ErrNoLayers).
func (s *Service) MountImage(id string) (string, error) {
	img, err := s.lookup(id)
	if err != nil {
		return "", err
	}
	if img.TopLayer == "" {
		return "", ErrNoLayers
	}
	return s.store.MountImage(img.ID, nil, "")
}

// UnmountImage releases one MountImage of id.
func (s *Service) UnmountImage(id string) error {
	img, err := s.lookup(id)
	if err != nil {
		return err
	}
	_, err = s.store.UnmountImage(img.ID, false)
	return err
}

// ErrNoLayers is MountImage's answer for an image with no layers.
var ErrNoLayers = errNoLayers{}

type errNoLayers struct{}

func (errNoLayers) Error() string { return "the image has no layers" }

func (s *Service) parentImage(id string) (*cstorage.Image, error) {
	if id == "" {
		return nil, nil
	}
	return s.lookup(id)
}

func createdOf(cfg dockerspec.DockerOCIImage) time.Time {
	if cfg.Created != nil {
		return *cfg.Created
	}
	return time.Now().UTC()
}

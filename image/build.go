package image

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	cstorage "go.podman.io/storage"
)

// Maker makes images locally, on a parent, from a layer tar or from a
// config alone: docker commit (commit.go) and a Dockerfile build's steps,
// whose base images it mounts. The builder writes each config whole
// (history included), so these only add the layer. It reaches the
// store's records through makerStore (never a *Service) and holds where
// it spools a layer.
type Maker struct {
	images makerStore
	store  cstorage.Store // the same store, for layers and mounts
	tmpDir string         // spools of layers; on the store's disk
	log    *slog.Logger
}

// makerStore is what Maker asks of the image store (*Service): find an
// image and its config, record an image on a parent, drop a layer that
// no image was made of.
type makerStore interface {
	lookup(ref string) (*cstorage.Image, error)
	configOf(img *cstorage.Image) (*dockerspec.DockerOCIImage, error)
	createImageOn(rawConfig []byte, topLayer, parent string, names []string, manifest []byte, repoDigest string, created time.Time) (id string, existed bool, err error)
	dropLayer(id string)
	putLayer(parentID string, r io.Reader) (*cstorage.Layer, error)
}

// NewMaker returns the commit and build side of images, spooling where
// the image service's Config says.
func NewMaker(images *Service) *Maker {
	return &Maker{images: images, store: images.store, tmpDir: images.cfg.TmpDir, log: images.cfg.Log}
}

// PutImage stores diff (an uncompressed layer tar) as a layer on image
// parentID ("" is scratch: no layers) and records an image with config
// cfg, the layer's diff ID appended to cfg.RootFS. It returns the image's
// ID (hex). The image records parentID as its parent.
func (m *Maker) PutImage(ctx context.Context, parentID string, diff io.Reader, cfg dockerspec.DockerOCIImage) (string, error) {
	parent, err := m.parentImage(parentID)
	if err != nil {
		return "", err
	}
	return m.putLayerImage(parent, diff, cfg, nil, nil, createdOf(cfg))
}

// ConfigImage records an image with parentID's layers and config cfg,
// no layer of its own. The ID is the config's digest, so the same config
// gives the same image.
func (m *Maker) ConfigImage(ctx context.Context, parentID string, cfg dockerspec.DockerOCIImage) (string, error) {
	parent, err := m.parentImage(parentID)
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
	id, _, err := m.images.createImageOn(raw, top, pid, nil, nil, "", createdOf(cfg))
	return id, err
}

// MountImage mounts image id's filesystem read-only and returns where;
// UnmountImage releases it. An image without layers has no filesystem:
// the caller gives an empty directory instead (ErrNoLayers).
func (m *Maker) MountImage(id string) (string, error) {
	img, err := m.images.lookup(id)
	if err != nil {
		return "", err
	}
	if img.TopLayer == "" {
		return "", ErrNoLayers
	}
	return m.store.MountImage(img.ID, nil, "")
}

// UnmountImage releases one MountImage of id.
func (m *Maker) UnmountImage(id string) error {
	img, err := m.images.lookup(id)
	if err != nil {
		return err
	}
	_, err = m.store.UnmountImage(img.ID, false)
	return err
}

// ErrNoLayers is MountImage's answer for an image with no layers.
var ErrNoLayers = errNoLayers{}

type errNoLayers struct{}

func (errNoLayers) Error() string { return "the image has no layers" }

func (m *Maker) parentImage(id string) (*cstorage.Image, error) {
	if id == "" {
		return nil, nil
	}
	return m.images.lookup(id)
}

func createdOf(cfg dockerspec.DockerOCIImage) time.Time {
	if cfg.Created != nil {
		return *cfg.Created
	}
	return time.Now().UTC()
}

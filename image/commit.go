package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	cstorage "go.podman.io/storage"
)

// CommitOptions are what `docker commit` makes an image from.
type CommitOptions struct {
	Parent  string                          // the image the container runs ("sha256:..." or hex)
	Diff    io.Reader                       // the container's layer, an uncompressed tar
	Config  dockerspec.DockerOCIImageConfig // the container's config, before Changes
	Changes []string                        // Dockerfile instructions: CMD, ENV, ...
	Ref     string                          // repo[:tag], or "" for an untagged image
	Author  string
	Comment string
	// CreatedBy is the history's command line: the container's.
	CreatedBy string
	// Container and ContainerConfig are the committed container's ID and
	// its config as the API shows it (any JSON value), kept in the image
	// config's "container" and "container_config" as Docker keeps them.
	Container       string
	ContainerConfig any
}

// Commit makes an image of a container: its parent's layers and config
// history with the container's layer on top and its config (changes
// applied). It returns the new image's ID.
func (m *Maker) Commit(ctx context.Context, o CommitOptions) (string, error) {
	var names []string
	if o.Ref != "" {
		n, err := ParseName(o.Ref)
		if err != nil {
			return "", err
		}
		if err := checkNewName(n); err != nil {
			return "", err
		}
		names = []string{n.String()}
	}
	cfg := o.Config
	for _, c := range o.Changes {
		if err := applyChange(&cfg, c); err != nil {
			return "", err
		}
	}
	parent, err := m.images.lookup(o.Parent)
	if err != nil {
		return "", err
	}
	pc, err := m.images.configOf(parent)
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	img := *pc
	img.Created = &now
	img.Author = o.Author
	img.Config = cfg
	img.History = append(append([]ocispec.History{}, pc.History...), ocispec.History{
		Created: &now, Author: o.Author, CreatedBy: o.CreatedBy, Comment: o.Comment,
	})
	var extra map[string]any
	if o.Container != "" {
		extra = map[string]any{"container": o.Container, "container_config": o.ContainerConfig}
	}
	return m.putLayerImage(parent, o.Diff, img, extra, names, now)
}

// putLayerImage stores diff (an uncompressed layer tar) as a layer on
// parent's (nil: on none) and records an image on parent with config
// img, the new layer's diff ID appended to its RootFS. The layer goes
// again when no image can be made of it.
//
// extra holds top-level config fields beyond the OCI ones (Docker's
// "container" and "container_config"); nil for none.
func (m *Maker) putLayerImage(parent *cstorage.Image, diff io.Reader, img dockerspec.DockerOCIImage, extra map[string]any, names []string, created time.Time) (string, error) {
	// Spooled first: the diff's source may hold the store's locks until
	// it is read to its end.
	spool, err := os.CreateTemp(m.tmpDir, "commit-*.tar")
	if err != nil {
		return "", err
	}
	removeTemp(m.log, spool.Name())
	defer spool.Close()
	if _, err := io.Copy(spool, diff); err != nil {
		return "", fmt.Errorf("reading the layer's changes: %w", err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	top, parentID := "", ""
	if parent != nil {
		top, parentID = parent.TopLayer, parent.ID
	}
	l, err := m.images.putLayer(top, spool)
	if err != nil {
		return "", err
	}
	img.RootFS.Type = "layers"
	img.RootFS.DiffIDs = append(append([]digest.Digest{}, img.RootFS.DiffIDs...), l.UncompressedDigest)
	raw, err := marshalConfig(img, extra)
	if err != nil {
		m.images.dropLayer(l.ID)
		return "", err
	}
	id, existed, err := m.images.createImageOn(raw, l.ID, parentID, names, nil, "", created)
	if err != nil || existed {
		// An image of this very config has its own layer already.
		m.images.dropLayer(l.ID)
	}
	return id, err
}

// marshalConfig encodes an image config with extra top-level fields.
func marshalConfig(img dockerspec.DockerOCIImage, extra map[string]any) ([]byte, error) {
	raw, err := json.Marshal(img)
	if err != nil || len(extra) == 0 {
		return raw, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	for k, v := range extra {
		m[k] = v
	}
	return json.Marshal(m)
}

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
}

// Commit makes an image of a container: its parent's layers and config
// history with the container's layer on top and its config (changes
// applied). It returns the new image's ID.
func (s *Service) Commit(ctx context.Context, o CommitOptions) (string, error) {
	var names []string
	if o.Ref != "" {
		n, err := ParseName(o.Ref)
		if err != nil {
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
	parent, err := s.lookup(o.Parent)
	if err != nil {
		return "", err
	}
	pc, err := s.configOf(parent)
	if err != nil {
		return "", err
	}
	// Spooled first: the diff's source may hold the store's locks until
	// it is read to its end.
	spool, err := os.CreateTemp(s.cfg.TmpDir, "commit-*.tar")
	if err != nil {
		return "", err
	}
	os.Remove(spool.Name())
	defer spool.Close()
	if _, err := io.Copy(spool, o.Diff); err != nil {
		return "", fmt.Errorf("reading the container's changes: %w", err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	l, _, err := s.store.PutLayer("", parent.TopLayer, nil, "", false, nil, spool)
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	img := *pc
	img.Created = &now
	img.Author = o.Author
	img.Config = cfg
	img.RootFS.DiffIDs = append(append([]digest.Digest{}, pc.RootFS.DiffIDs...), l.UncompressedDigest)
	img.History = append(append([]ocispec.History{}, pc.History...), ocispec.History{
		Created: &now, Author: o.Author, CreatedBy: o.CreatedBy, Comment: o.Comment,
	})
	raw, err := json.Marshal(img)
	if err != nil {
		s.store.DeleteLayer(l.ID)
		return "", err
	}
	id, err := s.createImage(raw, l.ID, names, nil, "", now)
	if err != nil {
		s.store.DeleteLayer(l.ID)
		return "", err
	}
	return id, nil
}

// LayersSize is the size of every image layer in the store, each counted
// once however many images share it, for `docker system df`.
func (s *Service) LayersSize() int64 {
	imgs, err := s.store.Images()
	if err != nil {
		return 0
	}
	seen := map[string]bool{}
	var total int64
	for i := range imgs {
		chain, _ := s.layerChain(&imgs[i])
		for _, l := range chain {
			if !seen[l.ID] && l.UncompressedSize > 0 {
				seen[l.ID] = true
				total += l.UncompressedSize
			}
		}
	}
	return total
}

package image

import (
	"errors"
	"fmt"
	"io"

	digest "github.com/opencontainers/go-digest"
	cstorage "go.podman.io/storage"

	"github.com/lodge-containers/lodge/internal/layerdiff"
)

// chainID names a layer by everything beneath it, as the OCI image spec
// defines; lodge uses it as the layer's ID so that images share layers.
func chainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.FromString(parent.String() + " " + diffID.String())
}

// maxDrain is how much of a failed layer's input is read to learn whether
// it was corrupt.
const maxDrain = 64 << 20

// ensureLayer makes sure the layer diffID on top of parent is in the store,
// reading its tar (compressed or not) from open when it is not. The
// content must hash to diffID; a layer that does not is deleted again.
// existed says whether nothing had to be read.
func (s *Service) ensureLayer(parent, chain, diffID digest.Digest, open func() (io.ReadCloser, error)) (existed bool, err error) {
	id := chain.Encoded()
	if l, err := s.store.Layer(id); err == nil && l.UncompressedDigest == diffID {
		return true, nil
	}
	r, err := open()
	if err != nil {
		return false, err
	}
	defer r.Close()
	parentID := ""
	if parent != "" {
		parentID = parent.Encoded()
	}
	l, _, err := s.store.PutLayer(id, parentID, nil, "", false, nil, r)
	if errors.Is(err, cstorage.ErrDuplicateID) {
		// Another pull made it meanwhile.
		return true, nil
	}
	if err != nil {
		// A download that is corrupt often breaks the gzip or tar stream
		// before its digest can be checked at the end: read on, so that
		// the message says what is wrong, not where it broke.
		if _, derr := io.Copy(io.Discard, io.LimitReader(r, maxDrain)); derr != nil {
			return false, fmt.Errorf("layer %s: %w (storing it failed: %v)", diffID.Encoded()[:12], derr, err)
		}
		return false, fmt.Errorf("storing layer %s: %w", diffID.Encoded()[:12], err)
	}
	if l.UncompressedDigest != diffID {
		s.dropLayer(id)
		return false, fmt.Errorf("layer content %s does not match the image's diff ID %s", l.UncompressedDigest, diffID)
	}
	return false, nil
}

// layerID is the store's ID of the layer with chain ID chain: "" for an
// image with no layers (its chain is empty, and Encoded would panic).
func layerID(chain digest.Digest) string {
	if chain == "" {
		return ""
	}
	return chain.Encoded()
}

// layerChain lists an image's layers, bottom first.
func (s *Service) layerChain(img *cstorage.Image) ([]*cstorage.Layer, error) {
	var out []*cstorage.Layer
	for id := img.TopLayer; id != ""; {
		l, err := s.store.Layer(id)
		if err != nil {
			return nil, fmt.Errorf("image %s: layer %s: %w", img.ID[:12], id, err)
		}
		out = append([]*cstorage.Layer{l}, out...)
		id = l.Parent
	}
	return out, nil
}

// diff opens a layer's tar as it was stored (the store keeps its tar-split,
// so the bytes hash to the diff ID).
func (s *Service) diff(id string) (io.ReadCloser, error) {
	return layerdiff.Open(s.store, id)
}

package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	cstorage "go.podman.io/storage"

	"github.com/lodge-containers/lodge/errdefs"
)

// storedImage is an image in the store as go-containerregistry sees one:
// the exact config bytes (so the image ID does not change) and gzip layers
// made from the store's diffs.
type storedImage struct {
	config   []byte
	manifest []byte
	layers   map[v1.Hash]v1.Layer
}

func (i *storedImage) RawConfigFile() ([]byte, error) { return i.config, nil }
func (i *storedImage) MediaType() (types.MediaType, error) {
	return types.DockerManifestSchema2, nil
}
func (i *storedImage) RawManifest() ([]byte, error) { return i.manifest, nil }
func (i *storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := i.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("image has no layer %s", h)
}

// asRemote builds the registry view of a stored image.
func (r *Registry) asRemote(img *cstorage.Image) (v1.Image, error) {
	raw, err := r.store.ImageBigData(img.ID, keyConfig)
	if err != nil {
		return nil, err
	}
	chain, err := r.images.layerChain(img)
	if err != nil {
		return nil, err
	}
	cfgDigest, cfgSize, err := v1.SHA256(bytesReader(raw))
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: types.DockerManifestSchema2,
		Config: v1.Descriptor{MediaType: types.DockerConfigJSON, Size: cfgSize, Digest: cfgDigest},
	}
	si := &storedImage{config: raw, layers: map[v1.Hash]v1.Layer{}}
	for _, l := range chain {
		id := l.ID
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return r.images.diff(id) })
		if err != nil {
			return nil, err
		}
		d, err := layer.Digest()
		if err != nil {
			return nil, err
		}
		size, err := layer.Size()
		if err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.DockerLayer, Size: size, Digest: d})
		si.layers[d] = layer
	}
	if si.manifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return partial.CompressedToImage(si)
}

// Push uploads the image named ref to its registry.
func (r *Registry) Push(ctx context.Context, ref string, a *Auth, p ProgressSink) error {
	p = orDiscard(p)
	n, err := ParseName(ref)
	if err != nil {
		return err
	}
	stored, err := r.images.lookup(n.String())
	if err != nil {
		return errdefs.NotFoundf("An image does not exist locally with the tag: %s", reference.FamiliarName(n))
	}
	p.Status("", "The push refers to repository ["+n.Name()+"]")
	img, err := r.asRemote(stored)
	if err != nil {
		return err
	}
	rref, err := r.remoteRef(n, "")
	if err != nil {
		return err
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		p.Status(shortID(l), "Preparing")
	}
	if err := remote.Write(rref, img, r.remoteOptions(ctx, a)...); err != nil {
		return registryError("push", reference.FamiliarString(n), err)
	}
	for _, l := range layers {
		p.Status(shortID(l), "Pushed")
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	raw, _ := img.RawManifest()
	tag := "latest"
	if t, ok := n.(reference.Tagged); ok {
		tag = t.Tag()
	}
	p.Status("", fmt.Sprintf("%s: digest: %s size: %d", tag, d, len(raw)))
	p.Aux(map[string]any{"Tag": tag, "Digest": d.String(), "Size": len(raw)})
	return r.images.noteRepoDigest(stored, n.Name()+"@"+d.String())
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

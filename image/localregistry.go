package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	cstorage "go.podman.io/storage"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/internal/layerdiff"
)

// LocalManifest is a stored image as a registry would serve it, for
// BuildKit (lodge-buildkitd), which pulls images rather than reading a
// store: Docker's BuildKit reads Docker's store, so `FROM` an image that
// is only local works there and must here. The manifest is made up on the
// spot and always the same for the same image: its config is the image's
// config (digest: the image ID) and its layers the store's uncompressed
// diffs, whose digests are the diff IDs, since the store replays a layer's
// tar byte for byte. ref is a name (host/repo:tag) or a digest this
// function returned before. The error is NotFound when no image matches.
func (r *Registry) LocalManifest(ref string) (body []byte, dgst digest.Digest, err error) {
	if d, err := digest.Parse(ref); err == nil {
		return r.manifestByDigest(d)
	}
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, "", errdefs.InvalidArgumentf("invalid reference %q: %v", ref, err)
	}
	img, err := r.store.Image(reference.TagNameOnly(n).String())
	if err != nil {
		return nil, "", errdefs.NotFoundf("no local image %s", ref)
	}
	return r.localManifest(img)
}

func (r *Registry) localManifest(img *cstorage.Image) ([]byte, digest.Digest, error) {
	raw, err := r.store.ImageBigData(img.ID, keyConfig)
	if err != nil {
		return nil, "", err
	}
	chain, err := r.images.layerChain(img)
	if err != nil {
		return nil, "", err
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(raw), Size: int64(len(raw))},
		Layers:    []ocispec.Descriptor{},
	}
	m.SchemaVersion = 2
	for _, l := range chain {
		if l.UncompressedDigest == "" || l.UncompressedSize <= 0 {
			return nil, "", fmt.Errorf("layer %s has no recorded digest or size", l.ID)
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: l.UncompressedDigest, Size: l.UncompressedSize})
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, "", err
	}
	return b, digest.FromBytes(b), nil
}

// manifestByDigest finds the image whose made-up manifest has digest d.
// BuildKit fetches a manifest by digest right after resolving its name;
// there are few images, and each manifest costs a config read.
func (r *Registry) manifestByDigest(d digest.Digest) ([]byte, digest.Digest, error) {
	imgs, err := r.store.Images()
	if err != nil {
		return nil, "", err
	}
	for i := range imgs {
		b, got, err := r.localManifest(&imgs[i])
		if err == nil && got == d {
			return b, got, nil
		}
	}
	return nil, "", errdefs.NotFoundf("no local image has manifest %s", d)
}

// LocalBlob opens a blob of a LocalManifest: an image's config or a
// layer's uncompressed diff. The caller closes it. The error is NotFound
// for a digest the store does not hold.
func (r *Registry) LocalBlob(ctx context.Context, d digest.Digest) (io.ReadCloser, int64, error) {
	if d.Algorithm() != digest.SHA256 || d.Validate() != nil {
		return nil, 0, errdefs.InvalidArgumentf("invalid digest %q", d)
	}
	if img, err := r.store.Image(d.Encoded()); err == nil {
		raw, err := r.store.ImageBigData(img.ID, keyConfig)
		if err != nil {
			return nil, 0, err
		}
		return io.NopCloser(strings.NewReader(string(raw))), int64(len(raw)), nil
	}
	layers, err := r.store.LayersByUncompressedDigest(d)
	if err != nil || len(layers) == 0 {
		return nil, 0, errdefs.NotFoundf("no local blob %s", d)
	}
	// Opened on the first read: BuildKit asks HEAD for every blob, and
	// an open diff locks the store.
	id := layers[0].ID
	return &layerdiff.Lazy{Open: func() (io.ReadCloser, error) { return r.images.diff(id) }}, layers[0].UncompressedSize, nil
}

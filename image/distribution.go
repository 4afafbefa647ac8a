package image

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/api/types/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lodge-containers/lodge/errdefs"
)

// DistributionInspect asks the registry what ref names now, without
// pulling it: the manifest's descriptor (its digest is what `docker
// compose config --resolve-image-digests` pins, and docker-py's
// get_registry_data returns) and the platforms it is made for, from an
// index's entries or a single image's config. Mirrors of docker.io are
// asked first, as for a pull.
func (r *Registry) DistributionInspect(ctx context.Context, ref string, a *Auth) (registry.DistributionInspect, error) {
	parsed, err := reference.ParseAnyReference(ref)
	if err != nil {
		return registry.DistributionInspect{}, errdefs.InvalidArgumentf("invalid reference format: %q: %v", ref, err)
	}
	if _, named := parsed.(reference.Named); !named {
		// A bare digest is an image ID, which no registry is asked by.
		return registry.DistributionInspect{}, errdefs.InvalidArgumentf("no manifest found for full image ID %q: name the image's repository", ref)
	}
	n, err := ParseName(ref)
	if err != nil {
		return registry.DistributionInspect{}, err
	}
	var out registry.DistributionInspect
	err = r.fromSources(n, func(src string) (err error) {
		out, err = r.distributionFrom(ctx, n, src, a)
		return err
	})
	return out, err
}

func (r *Registry) distributionFrom(ctx context.Context, n reference.Named, src string, a *Auth) (registry.DistributionInspect, error) {
	rref, err := r.remoteRef(n, src)
	if err != nil {
		return registry.DistributionInspect{}, err
	}
	desc, err := remote.Get(rref, r.remoteOptions(ctx, a)...)
	if err != nil {
		return registry.DistributionInspect{}, registryError("inspect", reference.FamiliarString(n), err)
	}
	out := registry.DistributionInspect{Descriptor: ocispec.Descriptor{
		MediaType: string(desc.MediaType),
		Digest:    digest.Digest(desc.Digest.String()),
		Size:      desc.Size,
	}}
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return registry.DistributionInspect{}, fmt.Errorf("%s: %w", reference.FamiliarString(n), err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return registry.DistributionInspect{}, fmt.Errorf("%s: %w", reference.FamiliarString(n), err)
		}
		// Every entry, as Docker lists them: an attestation manifest
		// without a platform is listed with an empty one.
		out.Platforms = []ocispec.Platform{}
		for _, m := range im.Manifests {
			var p ocispec.Platform
			if m.Platform != nil {
				p = ocispec.Platform{Architecture: m.Platform.Architecture, OS: m.Platform.OS,
					OSVersion: m.Platform.OSVersion, OSFeatures: m.Platform.OSFeatures, Variant: m.Platform.Variant}
			}
			out.Platforms = append(out.Platforms, p)
		}
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return registry.DistributionInspect{}, fmt.Errorf("%s: %w", reference.FamiliarString(n), err)
		}
		// The config's os and architecture; a config that cannot be
		// read leaves the list empty, as in Docker.
		if raw, err := img.RawConfigFile(); err == nil {
			var p ocispec.Platform
			if json.Unmarshal(raw, &p) == nil && (p.OS != "" || p.Architecture != "") {
				out.Platforms = []ocispec.Platform{p}
			}
		}
	case desc.MediaType == types.DockerManifestSchema1 || desc.MediaType == types.DockerManifestSchema1Signed:
		return registry.DistributionInspect{}, errdefs.NotImplementedf("%s is a Docker Image manifest version 2, schema 1, which lodge does not read: push it again with a newer client", reference.FamiliarString(n))
	}
	return out, nil
}

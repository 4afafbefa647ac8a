package daemon

import (
	"context"

	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/internal/platform"
)

// Checks of a create request that Docker makes and lodge's other checks
// do not cover: they say what Docker says, with its status.

// validateAnnotations refuses an empty annotation key.
func validateAnnotations(hc *container.HostConfig) error {
	for k := range hc.Annotations {
		if k == "" {
			return errdefs.InvalidArgumentf("invalid Annotations: the empty string is not permitted as an annotation key")
		}
	}
	return nil
}

// CheckImagePlatform refuses, as Docker's create does, an image that is
// there but not of the platform asked for ("os[/arch[/variant]]" or the
// JSON the docker CLI sends; "" asks for none).
func (s *Containers) CheckImagePlatform(ctx context.Context, ref, spec string) error {
	want, err := platform.Parse(spec)
	if err != nil || want == nil {
		return err
	}
	_, cfg, err := s.Images.Resolve(ctx, ref)
	if err != nil {
		return err
	}
	have := ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	if !platform.Matches(*want, have) {
		return errdefs.NotFoundf("image with reference %s was found but its platform (%s) does not match the specified platform (%s)",
			ref, platform.Format(have), platform.Format(*want))
	}
	return nil
}

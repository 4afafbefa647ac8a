package build

import (
	"context"
	"io"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// LayerReuser is an optional Backend ability, found by type assertion,
// that lets Options.CacheFrom serve steps in the middle of a build (as
// Docker's classic builder does): Reuse records an image made of the
// first n layers of from (whose config is cfg), without running anything.
// Without it, a CacheFrom image serves only steps that end on its last
// layer (its own metadata steps after that may differ: Commit makes the
// image then).
type LayerReuser interface {
	Reuse(ctx context.Context, from Image, n int, cfg dockerspec.DockerOCIImage) (Image, error)
}

// cacheFromImages resolves Options.CacheFrom once per build. Names that
// resolve to nothing are skipped, as Docker skips them.
func (r *buildRun) cacheFromImages(ctx context.Context) []Image {
	r.cacheFromOnce.Do(func() {
		for _, ref := range r.opts.CacheFrom {
			img, err := r.b.backend.Lookup(ctx, ref)
			if err != nil {
				if img, err = r.b.backend.Base(ctx, ref, false, io.Discard); err != nil {
					continue
				}
			}
			r.cacheFrom = append(r.cacheFrom, img)
		}
	})
	return r.cacheFrom
}

// sameHistory compares history entries by what made them, not when.
func sameHistory(a, b []ocispec.History) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].CreatedBy != b[i].CreatedBy || a[i].EmptyLayer != b[i].EmptyLayer {
			return false
		}
	}
	return true
}

// cacheFromHit finds a CacheFrom image whose history continues the
// stage's so far with the step next would be (createdBy; a layer step
// unless empty), on the same layers. History lines name what a step did
// (a COPY's line has its content hash), so a match means the same step.
func (s *stageRun) cacheFromHit(ctx context.Context, next *ocispec.History) (Image, bool) {
	if len(s.opts.CacheFrom) == 0 || s.opts.NoCache {
		return Image{}, false
	}
	want := s.cfg.History
	layers := len(s.cfg.RootFS.DiffIDs)
	if next != nil {
		want = append(append([]ocispec.History(nil), want...), *next)
		if !next.EmptyLayer {
			layers++
		}
	}
	for _, c := range s.cacheFromImages(ctx) {
		ids := c.Config.RootFS.DiffIDs
		if len(c.Config.History) < len(want) || len(ids) < layers ||
			!sameHistory(c.Config.History[:len(want)], want) {
			continue
		}
		same := true
		for i, d := range s.cfg.RootFS.DiffIDs {
			same = same && ids[i] == d
		}
		if !same {
			continue
		}
		if len(c.Config.History) == len(want) && len(ids) == layers {
			return c, true
		}
		cfg := cloneConfig(s.cfg)
		cfg.History = cloneConfig(c.Config).History[:len(want)]
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs[:0:0], ids[:layers]...)
		if layers == len(ids) {
			// All of c's layers, fewer of its config steps: its
			// filesystem with this build's config.
			if img, err := s.b.backend.Commit(ctx, c, cfg); err == nil {
				return img, true
			}
			continue
		}
		if reuser, ok := s.b.backend.(LayerReuser); ok {
			if img, err := reuser.Reuse(ctx, c, layers, cfg); err == nil {
				return img, true
			}
		}
	}
	return Image{}, false
}

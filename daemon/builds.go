package daemon

import (
	"context"
	"io"

	"github.com/lodge-containers/lodge/build"
)

// Builder makes images from Dockerfiles and keeps their cache.
// (*build.Builder fits.)
type Builder interface {
	Build(ctx context.Context, contextTar io.Reader, opts build.Options, out io.Writer) (string, error)
	// Prune forgets the cache and returns the IDs of the images it held.
	Prune(ctx context.Context) ([]string, error)
}

// Builds is POST /build and /build/prune: the builder, and the images its
// cache made, removed when they are pruned and nothing else needs them.
type Builds struct {
	Builder Builder
	Images  *Images
}

// Build runs one build; see build.Builder.
func (b *Builds) Build(ctx context.Context, contextTar io.Reader, opts build.Options, out io.Writer) (string, error) {
	return b.Builder.Build(ctx, contextTar, opts, out)
}

// PruneCache forgets the build cache and deletes its images that have no
// name, no child image and no container. It returns the IDs deleted and
// the space that freed.
func (b *Builds) PruneCache(ctx context.Context) ([]string, uint64, error) {
	ids, err := b.Builder.Prune(ctx)
	if err != nil {
		return nil, 0, err
	}
	return b.Images.RemoveUnused(ids, b.Images.Containers.recs.imageUser)
}

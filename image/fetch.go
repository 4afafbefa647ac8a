package image

import (
	"context"
	"fmt"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	drivers "go.podman.io/storage/drivers"
)

// maxDownloads is how many layers download at once: go.podman.io/image's
// default, where Docker's max-concurrent-downloads is 3. The layers of a
// pull unpack as they download, and with three at a time a 2-core
// machine stayed a third idle on a pull of six layers (96 MiB from a
// loopback registry: 375 ms with three, 345 with six).
const maxDownloads = 6

// fetching is a layer downloading and unpacking into a staging
// directory.
type fetching struct {
	done chan struct{}
	st   *staged
	err  error
}

// fetches are a pull's downloads, by layer index.
type fetches struct {
	s  layerStager
	wg sync.WaitGroup
	by map[int]*fetching
}

// take waits for layer i's download and unpacking; the caller commits or
// discards what it returns. nil, nil is a layer the store had.
func (fs *fetches) take(i int) (*staged, error) {
	f := fs.by[i]
	if f == nil {
		return nil, nil
	}
	<-f.done
	st := f.st
	f.st = nil
	return st, f.err
}

// discard waits for every download to stop (the pull's context is
// cancelled first) and removes what no one committed.
func (fs *fetches) discard() {
	fs.wg.Wait()
	for _, f := range fs.by {
		fs.s.discard(f.st)
		f.st = nil
	}
}

// canStage says whether the store's driver can unpack a layer before its
// parent is in the store (overlay and fuse-overlayfs can; vfs cannot).
// A store keeps its driver: it is asked once, not (under the store's
// graph lock) on every pull, load and build step.
func (s *Service) canStage() bool {
	s.stagingOnce.Do(func() {
		d, err := s.store.GraphDriver()
		_, ok := d.(drivers.DriverWithDiffer)
		s.staging = err == nil && ok
	})
	return s.staging
}

// stageAll stages the layers at indexes, maxDownloads at a time, each
// with stage; a layer waiting for its turn when ctx ends fails with it.
func stageAll(ctx context.Context, s layerStager, indexes []int, stage func(i int) (*staged, error)) *fetches {
	fs := &fetches{s: s, by: map[int]*fetching{}}
	sem := make(chan struct{}, maxDownloads)
	for _, i := range indexes {
		f := &fetching{done: make(chan struct{})}
		fs.by[i] = f
		fs.wg.Add(1)
		go func() {
			defer fs.wg.Done()
			f.stageInTurn(ctx, sem, func() (*staged, error) { return stage(i) })
		}()
	}
	return fs
}

// stageInTurn fills f with stage's result once sem has room (ctx's error
// if it ends first), then closes f.done.
func (f *fetching) stageInTurn(ctx context.Context, sem chan struct{}, stage func() (*staged, error)) {
	defer close(f.done)
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		f.err = ctx.Err()
		return
	}
	defer func() { <-sem }()
	f.st, f.err = stage()
}

// fetchAll starts downloading every layer the store lacks, each
// unpacking into a staging directory as it arrives, so that the layers
// of an image unpack at once rather than one after the other. Each blob
// is checked against its digest as it is read to its end
// (go-containerregistry's reader fails there otherwise), and each layer
// against its diff ID when it is committed.
func (r *Registry) fetchAll(ctx context.Context, layers []v1.Layer, chains []digest.Digest, p ProgressSink, ref string) *fetches {
	var missing []int
	for i, l := range layers {
		if _, err := r.store.Layer(chains[i].Encoded()); err != nil {
			missing = append(missing, i)
			p.Status(shortID(l), "Pulling fs layer")
		}
	}
	return stageAll(ctx, r.images, missing, func(i int) (*staged, error) {
		return r.fetch(layers[i], p, shortID(layers[i]), ref)
	})
}

// fetch downloads one layer's blob into a staging directory.
func (r *Registry) fetch(l v1.Layer, p ProgressSink, short, ref string) (*staged, error) {
	rc, err := l.Compressed() // verified against its digest as it is read
	if err != nil {
		return nil, registryError("pull", ref, err)
	}
	defer rc.Close()
	size, _ := l.Size()
	d, err := l.Digest()
	if err != nil {
		return nil, err
	}
	st, err := r.images.stageLayer(&bar{r: rc, p: p, id: short, status: "Downloading", total: size}, digest.Digest(d.String()))
	if err != nil {
		return nil, fmt.Errorf("layer %s of %s: %w", short, ref, registryError("pull", ref, err))
	}
	p.Status(short, "Download complete")
	return st, nil
}

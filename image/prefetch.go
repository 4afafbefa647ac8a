package image

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
)

// maxDownloads is how many layers download at once (Docker's default
// max-concurrent-downloads is 3).
const maxDownloads = 3

// fetched is a layer downloading, or downloaded, into a temporary file.
type fetched struct {
	log  *slog.Logger
	done chan struct{}
	path string
	err  error
	used bool
}

// open waits for the download and opens the file; closing it deletes it.
func (f *fetched) open() (io.ReadCloser, error) {
	<-f.done
	f.used = true
	if f.err != nil {
		return nil, f.err
	}
	fh, err := os.Open(f.path)
	removeTemp(f.log, f.path) // the open file stays readable
	return fh, err
}

// fetches are a pull's downloads, by layer index.
type fetches struct {
	wg  sync.WaitGroup
	by  map[int]*fetched
	log *slog.Logger
}

func (fs *fetches) get(i int) *fetched { return fs.by[i] }

// discard waits for every download to stop (the pull's context is
// cancelled first) and deletes the files no one used.
func (fs *fetches) discard() {
	fs.wg.Wait()
	for _, f := range fs.by {
		if !f.used && f.path != "" {
			removeTemp(fs.log, f.path)
		}
	}
}

// prefetch starts downloading every missing layer but the first missing
// one (which streams straight into the store) into files under TmpDir,
// maxDownloads at a time. Each blob is checked against its digest as it
// downloads (go-containerregistry's reader fails at the end otherwise).
func (r *Registry) prefetch(ctx context.Context, layers []v1.Layer, chains []digest.Digest, p ProgressSink, ref string) *fetches {
	fs := &fetches{by: map[int]*fetched{}, log: r.cfg.Log}
	first := true
	sem := make(chan struct{}, maxDownloads)
	for i, l := range layers {
		if _, err := r.store.Layer(chains[i].Encoded()); err == nil {
			continue
		}
		if first {
			first = false
			continue
		}
		f := &fetched{log: r.cfg.Log, done: make(chan struct{})}
		fs.by[i] = f
		short := shortID(l)
		p.Status(short, "Pulling fs layer")
		fs.wg.Add(1)
		go func() {
			defer fs.wg.Done()
			defer close(f.done)
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				f.err = ctx.Err()
				return
			}
			defer func() { <-sem }()
			f.path, f.err = r.download(l, p, short, ref)
		}()
	}
	return fs
}

// download copies a layer's compressed blob into a temporary file.
func (r *Registry) download(l v1.Layer, p ProgressSink, short, ref string) (string, error) {
	rc, err := l.Compressed()
	if err != nil {
		return "", registryError("pull", ref, err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(r.cfg.TmpDir, "layer-")
	if err != nil {
		return "", err
	}
	size, _ := l.Size()
	_, err = io.Copy(tmp, &bar{r: rc, p: p, id: short, status: "Downloading", total: size})
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		removeTemp(r.cfg.Log, tmp.Name())
		return "", fmt.Errorf("downloading layer %s of %s: %w", short, ref, registryError("pull", ref, err))
	}
	p.Status(short, "Download complete")
	return tmp.Name(), nil
}

package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// cacheIndex maps step keys to the images they made, in <dir>/cache.json.
// Readers take the file as it is (it is only ever replaced by rename, so
// it is always whole); writers hold an flock on <dir>/cache.lock for the
// read-modify-rename, so concurrent builds, in one lodged or several, do
// not lose each other's entries.
type cacheIndex struct {
	dir string
}

type cacheFile struct {
	Version int               `json:"version"`
	Entries map[string]string `json:"entries"` // step key -> image ID
}

func (c cacheIndex) path() string { return filepath.Join(c.dir, "cache.json") }

func (c cacheIndex) read() (cacheFile, error) {
	cf := cacheFile{Version: 1, Entries: map[string]string{}}
	b, err := os.ReadFile(c.path())
	if errors.Is(err, fs.ErrNotExist) {
		return cf, nil
	}
	if err != nil {
		return cf, err
	}
	if err := json.Unmarshal(b, &cf); err != nil {
		// A broken index costs a rebuild, never a failed build.
		return cacheFile{Version: 1, Entries: map[string]string{}}, nil
	}
	if cf.Entries == nil {
		cf.Entries = map[string]string{}
	}
	return cf, nil
}

func (c cacheIndex) get(key string) (string, bool) {
	cf, err := c.read()
	if err != nil {
		return "", false
	}
	id, ok := cf.Entries[key]
	return id, ok
}

// update runs fn on the index under the lock and writes the result.
func (c cacheIndex) update(fn func(cf *cacheFile)) error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(c.dir, "cache.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	defer func() { _ = unix.Flock(int(lock.Fd()), unix.LOCK_UN) }() // closing the file unlocks too
	cf, err := c.read()
	if err != nil {
		return err
	}
	fn(&cf)
	b, err := json.Marshal(cf)
	if err != nil {
		return err
	}
	return atomicfile.Write(c.path(), b, 0o600)
}

func (c cacheIndex) put(key, id string) error {
	return c.update(func(cf *cacheFile) { cf.Entries[key] = id })
}

// Prune empties the build cache: the step index and the RUN
// --mount=type=cache directories. It returns the image IDs the index
// held (each once, sorted), so the daemon can remove those no tag or
// container uses; the builder removes no image itself. Safe to call while
// builds run: they only lose their cache hits.
func (b *Builder) Prune(ctx context.Context) (imageIDs []string, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	err = b.cache().update(func(cf *cacheFile) {
		for _, id := range cf.Entries {
			if !seen[id] {
				seen[id] = true
				imageIDs = append(imageIDs, id)
			}
		}
		cf.Entries = map[string]string{}
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(imageIDs)
	if err := os.RemoveAll(filepath.Join(b.dir, "cache")); err != nil {
		return imageIDs, err
	}
	return imageIDs, nil
}

func (b *Builder) cache() cacheIndex { return cacheIndex{dir: b.dir} }

// lookup returns the cached image for key, if the index has one and the
// backend still has the image.
func (b *Builder) lookup(ctx context.Context, key string) (Image, bool, error) {
	id, ok := b.cache().get(key)
	if !ok {
		return Image{}, false, nil
	}
	img, err := b.backend.Lookup(ctx, id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return Image{}, false, nil
	}
	if err != nil {
		return Image{}, false, fmt.Errorf("build cache: %w", err)
	}
	return img, true, nil
}

// chainKey derives a step's cache key from the previous key and what
// makes the step what it is. Fields are length-prefixed so that no two
// different lists hash alike.
func chainKey(prev string, parts ...string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s", len(prev), prev)
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

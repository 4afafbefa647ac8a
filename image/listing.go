package image

import (
	"sync"
	"time"

	imagetypes "github.com/moby/moby/api/types/image"
	digest "github.com/opencontainers/go-digest"
	cstorage "go.podman.io/storage"
)

// listing is what `docker images` reads of each image beyond its record:
// the creation time and labels from its config, and its size from its
// layers. Read for every image on every listing, through the store, they
// cost a lock and a file read per image and a lock per layer: 1,000
// images listed in ~110 ms, more than Docker's whole answer.
//
// A config never changes under its digest, so what was read of it is kept
// by image ID and config digest, and a record whose config digest differs
// (or is not recorded) is read again. The layers are read once per listing
// with one call to the store.
type listing struct {
	mu      sync.Mutex
	configs map[string]listedConfig // by image ID, the images the last listing saw
}

type listedConfig struct {
	digest  digest.Digest
	created *time.Time
	labels  map[string]string
}

// config is what List needs of img's config: from the last listing when
// its digest is the same, else read from the store. seen collects what
// this listing read, to be kept for the next.
func (l *listing) config(s *Service, img *cstorage.Image, seen map[string]listedConfig) (listedConfig, error) {
	d := img.BigDataDigests[keyConfig]
	l.mu.Lock()
	c, ok := l.configs[img.ID]
	l.mu.Unlock()
	if !ok || d == "" || c.digest != d {
		cfg, err := s.configOf(img)
		if err != nil {
			return listedConfig{}, err
		}
		c = listedConfig{digest: d, created: cfg.Created, labels: cfg.Config.Labels}
	}
	if d != "" {
		seen[img.ID] = c
	}
	return c, nil
}

// keep makes seen what the next listing starts from: images gone since
// are forgotten with it.
func (l *listing) keep(seen map[string]listedConfig) {
	l.mu.Lock()
	l.configs = seen
	l.mu.Unlock()
}

// layerSet is every layer of the store, read at once.
type layerSet map[string]*cstorage.Layer

// layerSizes reads every layer's uncompressed size and parent at once.
func layerSizes(st cstorage.Store) (layerSet, error) {
	ls, err := st.Layers()
	if err != nil {
		return nil, err
	}
	m := make(layerSet, len(ls))
	for i := range ls {
		m[ls[i].ID] = &ls[i]
	}
	return m, nil
}

func (m layerSet) get(id string) (*cstorage.Layer, error) {
	if l, ok := m[id]; ok {
		return l, nil
	}
	return nil, cstorage.ErrLayerUnknown
}

// sharedSizes sets each listed image's SharedSize (its top layer in
// tops) as Docker counts it: the sizes of the layers of its chain that the
// chain of at least one other image of all holds too.
func sharedSizes(listed []imagetypes.Summary, tops []string, all []cstorage.Image, layers layerSet) {
	users := map[string]int{}
	for i := range all {
		walkChain(all[i].TopLayer, layers.get, func(l *cstorage.Layer) { users[l.ID]++ })
	}
	for i := range listed {
		var shared int64
		walkChain(tops[i], layers.get, func(l *cstorage.Layer) {
			if users[l.ID] > 1 && l.UncompressedSize > 0 {
				shared += l.UncompressedSize
			}
		})
		listed[i].SharedSize = shared
	}
}

// walkChain calls fn for top and each of its parents, each found with
// layer, and reports whether the chain was whole (no link missing).
func walkChain(top string, layer func(id string) (*cstorage.Layer, error), fn func(*cstorage.Layer)) bool {
	for id := top; id != ""; {
		l, err := layer(id)
		if err != nil {
			return false
		}
		fn(l)
		id = l.Parent
	}
	return true
}

// chainSize is an image's size: the sum of its layers, uncompressed, from
// top down through their parents, each found with layer; 0 when a link
// is missing (a broken chain counts as empty).
func chainSize(top string, layer func(id string) (*cstorage.Layer, error)) int64 {
	var total int64
	whole := walkChain(top, layer, func(l *cstorage.Layer) {
		if l.UncompressedSize > 0 {
			total += l.UncompressedSize
		}
	})
	if !whole {
		return 0
	}
	return total
}

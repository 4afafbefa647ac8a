// Package image keeps lodge's images: names and lookups over the layer
// store (Service), and moving images in and out through registries
// (Registry, over go-containerregistry), docker-archive tarballs and
// rootfs imports (Archives), and making them locally from a container's
// or a build step's layer (Maker). Each of the three sees the store only
// through a small interface declared in its own file.
package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"
	digest "github.com/opencontainers/go-digest"
	cstorage "go.podman.io/storage"

	"github.com/lodge-containers/lodge/errdefs"
)

// The big-data keys an image record keeps.
const (
	keyConfig   = "config"
	keyManifest = "manifest"
)

// Config is what the image types need from the daemon's configuration;
// New takes it, and NewRegistry, NewArchives and NewMaker read their
// parts of it from the Service they are given.
type Config struct {
	TmpDir             string   // for spooling archives; on the data root's disk
	InsecureRegistries []string // host[:port]s spoken to over plain HTTP
	Mirrors            []string // registry mirrors for docker.io, as URLs or hosts
	Log                *slog.Logger
}

// Service owns the image records. It is safe for concurrent use.
type Service struct {
	cfg   Config
	store cstorage.Store
	// mu serialises changes to names, so that tag, pull and rmi see a
	// consistent picture.
	mu sync.Mutex
	// commitMu orders the commits of staged layers, each of which asks
	// the store whether its layer is there first.
	commitMu sync.Mutex
	// staging is canStage's answer, found once.
	stagingOnce sync.Once
	staging     bool
	listing     listing
}

// New returns the image service over store.
func New(store cstorage.Store, cfg Config) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Service{cfg: cfg, store: store}
}

// removeTemp deletes a temporary file; one that stays is only space, so
// it is logged, not returned.
func removeTemp(log *slog.Logger, path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Warn("image: temporary file left behind", "path", path, "err", err)
	}
}

// dropLayer deletes a layer an operation made before it failed; that
// failure is the one returned, a layer left behind is logged.
func (s *Service) dropLayer(id string) {
	if err := s.store.DeleteLayer(id); err != nil {
		s.cfg.Log.Warn("image: layer of a failed operation left behind", "layer", id, "err", err)
	}
}

// meta is what lodge keeps in an image record's metadata.
type meta struct {
	RepoDigests []string `json:"repoDigests,omitempty"`
	// Parent is the image this one was made on locally (commit, build),
	// hex; Docker shows it in inspect and hides untagged parents from
	// `docker images`.
	Parent string `json:"parent,omitempty"`
}

func readMeta(img *cstorage.Image) meta {
	var m meta
	_ = json.Unmarshal([]byte(img.Metadata), &m) // another tool's record (or none) has no lodge metadata
	return m
}

// ParseName normalises a user's image name as Docker does: "busybox"
// becomes docker.io/library/busybox:latest.
func ParseName(s string) (reference.Named, error) {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, errdefs.InvalidArgumentf("invalid reference format: %q: %v", s, err)
	}
	return reference.TagNameOnly(n), nil
}

// lookup finds an image by name, full or short ID, or name@digest.
func (s *Service) lookup(ref string) (*cstorage.Image, error) {
	id := strings.TrimPrefix(ref, "sha256:")
	if len(id) >= 3 && isHex(id) {
		if img, err := s.store.Image(id); err == nil && strings.HasPrefix(img.ID, id) {
			return img, nil
		}
	}
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil && !isHex(id) {
		// Not a name and no ID ("busybox:sha256:..."): Docker's 400 with
		// the parser's words, not a 404 the docker CLI would pull on.
		return nil, errdefs.InvalidArgumentf("%s", err)
	}
	if c, ok := n.(reference.Canonical); ok {
		imgs, _ := s.store.ImagesByDigest(c.Digest())
		for _, img := range imgs {
			for _, rd := range readMeta(img).RepoDigests {
				if rd == c.String() {
					return img, nil
				}
			}
		}
		if len(imgs) > 0 {
			return imgs[0], nil
		}
	} else if n != nil {
		if img, err := s.store.Image(reference.TagNameOnly(n).String()); err == nil {
			return img, nil
		}
	}
	return nil, errdefs.NotFoundf("No such image: %s", ref)
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// configOf reads an image's config.
func (s *Service) configOf(img *cstorage.Image) (*dockerspec.DockerOCIImage, error) {
	b, err := s.store.ImageBigData(img.ID, keyConfig)
	if err != nil {
		return nil, fmt.Errorf("image %s has no config: %w", img.ID[:12], err)
	}
	var c dockerspec.DockerOCIImage
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("image %s: config: %w", img.ID[:12], err)
	}
	return &c, nil
}

// Resolve gives a new container its image: the ID and the config, with
// Docker's extensions (HEALTHCHECK) kept.
func (s *Service) Resolve(ctx context.Context, ref string) (string, *dockerspec.DockerOCIImage, error) {
	img, err := s.lookup(ref)
	if err != nil {
		return "", nil, err
	}
	c, err := s.configOf(img)
	if err != nil {
		return "", nil, err
	}
	return img.ID, c, nil
}

// familiar splits an image's names into Docker's RepoTags (short form).
func familiar(img *cstorage.Image) []string {
	var tags []string
	for _, n := range img.Names {
		if r, err := reference.ParseNormalizedNamed(n); err == nil {
			tags = append(tags, reference.FamiliarString(r))
		}
	}
	sort.Strings(tags)
	return tags
}

func (s *Service) repoDigests(img *cstorage.Image) []string {
	var out []string
	for _, rd := range readMeta(img).RepoDigests {
		if r, err := reference.ParseNormalizedNamed(rd); err == nil {
			out = append(out, reference.FamiliarString(r))
		}
	}
	return out
}

// size is the sum of the image's layers, uncompressed.
func (s *Service) size(img *cstorage.Image) int64 {
	return chainSize(img.TopLayer, s.store.Layer)
}

// ListOptions filter List.
type ListOptions struct {
	All     bool
	Filters map[string][]string // dangling, reference, label, before, since
	InUse   func(id string) int // containers using an image; nil: Containers is -1
	// SharedSize has each image's SharedSize added up: what its layers
	// that other images use too take (else it is -1, as in Docker).
	SharedSize bool
}

// List is `docker images`. Filters are Docker's: dangling, label,
// reference (which also trims RepoTags and RepoDigests to the names that
// match), before, since and until (by the images' creation times).
func (s *Service) List(opts ListOptions) ([]imagetypes.Summary, error) {
	f, err := s.listFilter(opts.Filters)
	if err != nil {
		return nil, err
	}
	imgs, err := s.store.Images()
	if err != nil {
		return nil, err
	}
	layers, err := layerSizes(s.store)
	if err != nil {
		return nil, err
	}
	kids := children(imgs)
	seen := make(map[string]listedConfig, len(imgs))
	defer s.listing.keep(seen)
	out := []imagetypes.Summary{}
	var tops []string // the listed images' top layers, for SharedSize
	for i := range imgs {
		img := &imgs[i]
		if !opts.All && len(img.Names) == 0 && kids[img.ID] > 0 {
			continue // an intermediate image, as Docker hides them
		}
		c, err := s.listing.config(s, img, seen)
		if err != nil {
			continue
		}
		created := img.Created
		if c.created != nil {
			created = *c.created
		}
		if !f.matchImage(created, c.labels) {
			continue
		}
		tags, digests := familiar(img), s.repoDigests(img)
		if f.refs != nil {
			tags, digests = f.matchRefs(tags), f.matchRefs(digests)
			if len(tags) == 0 && len(digests) == 0 {
				continue
			}
		}
		if f.dangling != nil && *f.dangling != (len(tags) == 0) {
			continue
		}
		sum := imagetypes.Summary{
			ID: "sha256:" + img.ID, RepoTags: nonNil(tags), RepoDigests: nonNil(digests),
			Created: created.Unix(), Size: chainSize(img.TopLayer, layers.get), Labels: c.labels, Containers: -1, SharedSize: -1,
		}
		if p := readMeta(img).Parent; p != "" {
			sum.ParentID = "sha256:" + p
		}
		if opts.InUse != nil {
			sum.Containers = int64(opts.InUse(img.ID))
		}
		out = append(out, sum)
		tops = append(tops, img.TopLayer)
	}
	if opts.SharedSize {
		sharedSizes(out, tops, imgs, layers)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created > out[j].Created })
	return out, nil
}

// layerDirs is what the driver tells of layer id's directories (overlay:
// LowerDir, UpperDir, WorkDir, MergedDir, as in Docker's inspect); empty
// when it tells nothing.
func (s *Service) layerDirs(id string) map[string]string {
	d, err := s.store.GraphDriver()
	if err != nil || id == "" {
		return map[string]string{}
	}
	md, err := d.Metadata(id)
	if err != nil || md == nil {
		return map[string]string{}
	}
	return md
}

// checkNewName refuses a name for an image that would read as an ID
// ("sha256:<hex>" is repository sha256 with a tag), as Docker does.
func checkNewName(n reference.Named) error {
	if reference.FamiliarName(n) == string(digest.Canonical) {
		return errdefs.InvalidArgumentf("refusing to create an ambiguous tag using digest algorithm as name")
	}
	return nil
}

func mustParse(s string) reference.Named {
	n, _ := reference.ParseNormalizedNamed(s)
	return n
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Inspect is `docker image inspect`.
func (s *Service) Inspect(ref string) (imagetypes.InspectResponse, error) {
	img, err := s.lookup(ref)
	if err != nil {
		return imagetypes.InspectResponse{}, err
	}
	c, err := s.configOf(img)
	if err != nil {
		return imagetypes.InspectResponse{}, err
	}
	r := imagetypes.InspectResponse{
		ID: "sha256:" + img.ID, RepoTags: nonNil(familiar(img)), RepoDigests: nonNil(s.repoDigests(img)),
		Author: c.Author, Architecture: c.Architecture, Variant: c.Variant, Os: c.OS, OsVersion: c.OSVersion,
		Size: s.size(img), Config: &c.Config,
		RootFS:      imagetypes.RootFS{Type: "layers"},
		GraphDriver: &storage.DriverData{Name: s.store.GraphDriverName(), Data: s.layerDirs(img.TopLayer)},
	}
	if c.Created != nil {
		r.Created = c.Created.UTC().Format(time.RFC3339Nano)
	}
	if n := len(c.History); n > 0 {
		r.Comment = c.History[n-1].Comment
	}
	for _, d := range c.RootFS.DiffIDs {
		r.RootFS.Layers = append(r.RootFS.Layers, d.String())
	}
	return r, nil
}

// History is `docker history`: the config's history, newest first, with
// each non-empty entry's layer size.
func (s *Service) History(ref string) ([]imagetypes.HistoryResponseItem, error) {
	img, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	c, err := s.configOf(img)
	if err != nil {
		return nil, err
	}
	layers, _ := s.layerChain(img) // without its layers, history still has its steps
	out := []imagetypes.HistoryResponseItem{}
	li := 0
	for _, h := range c.History {
		item := imagetypes.HistoryResponseItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: []string{}}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		if !h.EmptyLayer && li < len(layers) {
			item.Size = layers[li].UncompressedSize
			li++
		}
		out = append([]imagetypes.HistoryResponseItem{item}, out...)
	}
	if len(out) > 0 {
		out[0].ID = "sha256:" + img.ID
		out[0].Tags = nonNil(familiar(img))
	}
	return out, nil
}

// Tag gives the image src the name dst (taking it from any other image).
func (s *Service) Tag(src, dst string) error {
	n, err := ParseName(dst)
	if err != nil {
		return err
	}
	if _, ok := n.(reference.Canonical); ok {
		return errdefs.InvalidArgumentf("refusing to create a tag with a digest reference")
	}
	if err := checkNewName(n); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	img, err := s.lookup(src)
	if err != nil {
		return err
	}
	return s.store.AddNames(img.ID, []string{n.String()})
}

// RemoveOptions are `docker rmi`'s.
type RemoveOptions struct {
	Force bool
	// NoPrune keeps the untagged parents the image was built on (docker
	// rmi --no-prune).
	NoPrune bool
	// UsedBy names a container using the image, or "".
	UsedBy func(id string) string
}

// Remove is `docker rmi`: by name it untags, and deletes the image once
// it has no name left; by ID it deletes the image and all its names
// (Docker refuses that for an image with several names unless forced).
func (s *Service) Remove(ref string, opts RemoveOptions) ([]imagetypes.DeleteResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	var out []imagetypes.DeleteResponse
	byName := ""
	if n, err := ParseName(ref); err == nil && !strings.HasPrefix(img.ID, strings.TrimPrefix(ref, "sha256:")) {
		byName = n.String()
	}
	user := ""
	if opts.UsedBy != nil {
		user = opts.UsedBy(img.ID)
	}
	if byName != "" && (len(img.Names) > 1 || (user != "" && opts.Force)) {
		if err := s.store.RemoveNames(img.ID, []string{byName}); err != nil {
			return nil, err
		}
		return []imagetypes.DeleteResponse{{Untagged: reference.FamiliarString(mustParse(byName))}}, nil
	}
	if byName == "" && len(img.Names) > 1 && !opts.Force {
		return nil, errdefs.Conflictf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", img.ID[:12])
	}
	if user != "" {
		if byName != "" {
			return nil, errdefs.Conflictf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", ref, user[:12], img.ID[:12])
		}
		return nil, errdefs.Conflictf("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s", img.ID[:12], user[:12])
	}
	if byName == "" || len(img.Names) <= 1 {
		if all, err := s.store.Images(); err == nil && children(all)[img.ID] > 0 {
			return nil, errdefs.Conflictf("conflict: unable to delete %s (cannot be forced) - image has dependent child images", img.ID[:12])
		}
	}
	for _, n := range familiar(img) {
		out = append(out, imagetypes.DeleteResponse{Untagged: n})
	}
	if _, err := s.store.DeleteImage(img.ID, true); err != nil {
		return out, fmt.Errorf("deleting image %s: %w", img.ID[:12], err)
	}
	out = append(out, imagetypes.DeleteResponse{Deleted: "sha256:" + img.ID})
	if !opts.NoPrune {
		out = append(out, s.removeParents(readMeta(img).Parent, opts.UsedBy)...)
	}
	return out, nil
}

// Prune deletes dangling images not used by containers, or with all every
// unused one. It returns what went and the space it freed.
func (s *Service) Prune(all bool, inUse func(id string) string) ([]imagetypes.DeleteResponse, uint64, error) {
	return s.PruneFiltered(PruneFilter{All: all}, inUse)
}

// PruneFiltered is Prune with Docker's filters.
func (s *Service) PruneFiltered(f PruneFilter, inUse func(id string) string) ([]imagetypes.DeleteResponse, uint64, error) {
	all := f.All
	s.mu.Lock()
	defer s.mu.Unlock()
	imgs, err := s.store.Images()
	if err != nil {
		return nil, 0, err
	}
	var out []imagetypes.DeleteResponse
	var freed uint64
	var errs []error
	kids := children(imgs)
	for i := range imgs {
		img := &imgs[i]
		if (!all && len(img.Names) > 0) || inUse(img.ID) != "" {
			continue
		}
		if len(img.Names) == 0 && kids[img.ID] > 0 {
			continue // an intermediate image: it goes with its last child
		}
		if c, err := s.configOf(img); err == nil {
			created := img.Created
			if c.Created != nil {
				created = *c.Created
			}
			if !f.Matches(created, c.Config.Labels) {
				continue
			}
		}
		if _, err := s.store.Image(img.ID); err != nil {
			continue // gone already, as the parent of one pruned before
		}
		size := s.size(img)
		for _, n := range familiar(img) {
			out = append(out, imagetypes.DeleteResponse{Untagged: n})
		}
		if _, err := s.store.DeleteImage(img.ID, true); err != nil {
			if errors.Is(err, cstorage.ErrImageUsedByContainer) {
				continue
			}
			errs = append(errs, err)
			continue
		}
		freed += uint64(size)
		out = append(out, imagetypes.DeleteResponse{Deleted: "sha256:" + img.ID})
		out = append(out, s.removeParents(readMeta(img).Parent, inUse)...)
	}
	return out, freed, errors.Join(errs...)
}

// Count is the number of images, for `info`.
func (s *Service) Count() int {
	imgs, _ := s.store.Images()
	return len(imgs)
}

// createImage records an image whose layers are in the store, named names
// (taken from other images), unless it exists; it returns its ID.
func (s *Service) createImage(rawConfig []byte, topLayer string, names []string, manifest []byte, repoDigest string, created time.Time) (string, error) {
	id, _, err := s.createImageOn(rawConfig, topLayer, "", names, manifest, repoDigest, created)
	return id, err
}

// createImageOn is createImage for an image made locally on parent (hex,
// or ""). existed reports that an image with that config was there
// already, so that a layer made for it is not its own.
func (s *Service) createImageOn(rawConfig []byte, topLayer, parent string, names []string, manifest []byte, repoDigest string, created time.Time) (id string, existed bool, err error) {
	id = digest.FromBytes(rawConfig).Encoded()
	s.mu.Lock()
	defer s.mu.Unlock()
	img, err := s.store.Image(id)
	if err == nil && !s.complete(img) {
		// Left half-made by a crash (the record before its config): the
		// config is what the ID names, so it can be put back.
		if err := s.store.SetImageBigData(id, keyConfig, rawConfig, nil); err != nil {
			return "", false, fmt.Errorf("image %s is incomplete and cannot be repaired: %w", id, err)
		}
	}
	existed = err == nil
	if err != nil {
		var md string
		if parent != "" {
			b, _ := json.Marshal(meta{Parent: parent})
			md = string(b)
		}
		opts := &cstorage.ImageOptions{CreationDate: created, Metadata: md,
			BigData: []cstorage.ImageBigDataOption{{Key: keyConfig, Data: rawConfig, Digest: digest.FromBytes(rawConfig)}}}
		if manifest != nil {
			opts.BigData = append(opts.BigData, cstorage.ImageBigDataOption{Key: keyManifest, Data: manifest, Digest: digest.FromBytes(manifest)})
		}
		// Names no other image holds go into the new record itself: each
		// later change rewrites the store's whole image list (and syncs
		// it), which a docker load of many images pays once per image.
		var fresh []string
		fresh, names = splitFreeNames(s.store, names)
		if img, err = s.store.CreateImage(id, fresh, topLayer, "", opts); err != nil {
			return "", false, err
		}
	}
	if err := s.addRepoDigest(img, repoDigest); err != nil {
		return "", existed, err
	}
	if len(names) > 0 {
		if err := s.store.AddNames(id, names); err != nil {
			return "", existed, err
		}
	}
	return id, existed, nil
}

// splitFreeNames parts names into those no image holds yet and those
// another image holds, which AddNames must move.
func splitFreeNames(st cstorage.Store, names []string) (free, taken []string) {
	for _, n := range names {
		if _, err := st.Image(n); err == nil {
			taken = append(taken, n)
		} else {
			free = append(free, n)
		}
	}
	return free, taken
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// addRepoDigest records that the registry knows img as rd (repo@digest).
// Callers hold s.mu.
func (s *Service) addRepoDigest(img *cstorage.Image, rd string) error {
	m := readMeta(img)
	if rd == "" || contains(m.RepoDigests, rd) {
		return nil
	}
	m.RepoDigests = append(m.RepoDigests, rd)
	b, _ := json.Marshal(m)
	return s.store.SetMetadata(img.ID, string(b))
}

// noteRepoDigest is addRepoDigest for a caller that does not hold s.mu
// (a push).
func (s *Service) noteRepoDigest(img *cstorage.Image, rd string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addRepoDigest(img, rd)
}

// complete tells whether img has its config: the store writes its image
// record before the big data, so a crash in between leaves a record that
// nothing can run.
func (s *Service) complete(img *cstorage.Image) bool {
	_, err := s.store.ImageBigData(img.ID, keyConfig)
	return err == nil
}

// RemoveIncomplete deletes the images a crash left without a config (their
// layers stay for images that share them), logging each. lodged calls it
// at start, before anything can use them.
func (s *Service) RemoveIncomplete() {
	s.mu.Lock()
	defer s.mu.Unlock()
	imgs, err := s.store.Images()
	if err != nil {
		return
	}
	for i := range imgs {
		if s.complete(&imgs[i]) {
			continue
		}
		if _, err := s.store.DeleteImage(imgs[i].ID, true); err != nil {
			s.cfg.Log.Warn("an incomplete image could not be removed", "id", imgs[i].ID, "err", err)
			continue
		}
		s.cfg.Log.Warn("removed an image a crash left without its config", "id", imgs[i].ID, "names", imgs[i].Names)
	}
}

// BuildContainer is the container an image was committed from and that
// container's config (raw JSON), as Docker's image inspect shows them in
// Container and ContainerConfig; "" and nil for an image made otherwise.
func (s *Service) BuildContainer(ref string) (string, json.RawMessage) {
	img, err := s.lookup(ref)
	if err != nil {
		return "", nil
	}
	b, err := s.store.ImageBigData(img.ID, keyConfig)
	if err != nil {
		return "", nil
	}
	var v struct {
		Container       string          `json:"container"`
		ContainerConfig json.RawMessage `json:"container_config"`
	}
	if json.Unmarshal(b, &v) != nil || v.Container == "" {
		return "", nil
	}
	return v.Container, v.ContainerConfig
}

// LayersSize is the size of every image layer in the store, each counted
// once however many images share it, for `docker system df`.
func (s *Service) LayersSize() int64 {
	imgs, err := s.store.Images()
	if err != nil {
		return 0
	}
	seen := map[string]bool{}
	var total int64
	for i := range imgs {
		chain, _ := s.layerChain(&imgs[i])
		for _, l := range chain {
			if !seen[l.ID] && l.UncompressedSize > 0 {
				seen[l.ID] = true
				total += l.UncompressedSize
			}
		}
	}
	return total
}

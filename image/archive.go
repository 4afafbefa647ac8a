package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	cstorage "go.podman.io/storage"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/internal/platform"
)

// Archives moves images in and out of the store as files: docker save's
// and docker load's archives, and docker import's rootfs tars. It reaches
// the store's records through archiveStore (never a *Service) and holds
// where it spools.
type Archives struct {
	images archiveStore
	store  cstorage.Store // the same store, for reads that take no lock
	tmpDir string         // spools of loads and saves; on the store's disk
	log    *slog.Logger
}

// archiveStore is what the archives ask of the image store (*Service):
// find an image and its config, read and store layers, record an image.
type archiveStore interface {
	lookup(ref string) (*cstorage.Image, error)
	configOf(img *cstorage.Image) (*dockerspec.DockerOCIImage, error)
	layerChain(img *cstorage.Image) ([]*cstorage.Layer, error)
	diff(id string) (io.ReadCloser, error)
	ensureLayer(parent, chain, diffID digest.Digest, open func() (io.ReadCloser, error)) (existed bool, err error)
	createImage(rawConfig []byte, topLayer string, names []string, manifest []byte, repoDigest string, created time.Time) (string, error)
	dropLayer(id string)
	layerStager
}

// NewArchives returns the archive side of images, spooling where the
// image service's Config says.
func NewArchives(images *Service) *Archives {
	return &Archives{images: images, store: images.store, tmpDir: images.cfg.TmpDir, log: images.cfg.Log}
}

// archiveEntry is one image in a docker-archive's manifest.json.
type archiveEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// Load is `docker load`: every image in a docker-archive (what docker save
// writes, with or without its OCI layout) goes into the store with its
// tags. It reports "Loaded image: NAME" per tag as Docker does.
func (a *Archives) Load(ctx context.Context, r io.Reader, p ProgressSink) error {
	p = orDiscard(p)
	t, err := a.spool(ctx, r)
	if err != nil {
		return err
	}
	defer t.Close()
	b, err := t.readAll("manifest.json")
	if err != nil {
		return errdefs.InvalidArgumentf("not a docker image archive: it has no manifest.json")
	}
	var entries []archiveEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return errdefs.InvalidArgumentf("the archive's manifest.json: %v", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := a.loadEntry(ctx, t, e, p); err != nil {
			return err
		}
	}
	return nil
}

func (a *Archives) loadEntry(ctx context.Context, t *spooledTar, e archiveEntry, p ProgressSink) error {
	raw, err := t.readAll(e.Config)
	if err != nil {
		return err
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return errdefs.InvalidArgumentf("image config %s: %v", e.Config, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
		return errdefs.InvalidArgumentf("image %s lists %d layers but its config %d", e.Config, len(e.Layers), len(cfg.RootFS.DiffIDs))
	}
	for _, d := range cfg.RootFS.DiffIDs {
		if err := d.Validate(); err != nil || d.Algorithm() != digest.SHA256 {
			return errdefs.InvalidArgumentf("image config %s: layer ID %q is not a sha256 digest", e.Config, d)
		}
	}
	var names []string
	for _, tag := range e.RepoTags {
		n, err := ParseName(tag)
		if err != nil {
			return err
		}
		names = append(names, n.String())
	}
	parent, err := a.loadLayers(ctx, t, e.Layers, cfg.RootFS.DiffIDs, p)
	if err != nil {
		return err
	}
	created := time.Now()
	if cfg.Created != nil {
		created = *cfg.Created
	}
	id, err := a.images.createImage(raw, layerID(parent), names, nil, "", created)
	if err != nil {
		return err
	}
	if len(e.RepoTags) == 0 {
		p.Stream("Loaded image ID: sha256:" + id + "\n")
	}
	for _, n := range names {
		p.Stream("Loaded image: " + reference.FamiliarString(mustParse(n)) + "\n")
	}
	return nil
}

// loadLayers brings an archived image's layers (files of t, by diff ID)
// into the store, bottom first, and returns the top one's chain ID. Where
// the driver can stage, the missing ones unpack at once.
func (a *Archives) loadLayers(ctx context.Context, t *spooledTar, files []string, diffIDs []digest.Digest, p ProgressSink) (digest.Digest, error) {
	chains := make([]digest.Digest, len(files))
	var parent digest.Digest
	var missing []int
	for i := range files {
		chains[i] = chainID(parent, diffIDs[i])
		parent = chains[i]
		if _, err := a.store.Layer(chains[i].Encoded()); err != nil {
			missing = append(missing, i)
		}
	}
	open := func(i int) (io.Reader, error) {
		r, err := t.open(files[i])
		if err != nil {
			return nil, err
		}
		p.Status(diffIDs[i].Encoded()[:12], "Loading layer")
		return r, nil
	}
	var fs *fetches
	if a.images.canStage() && len(missing) > 0 {
		ctx, cancel := context.WithCancel(ctx)
		fs = stageAll(ctx, a.images, missing, func(i int) (*staged, error) {
			if name, err := t.resolve(files[i]); err == nil {
				if st, ok := t.spec.take(name); ok {
					p.Status(diffIDs[i].Encoded()[:12], "Loading layer")
					return st, nil
				}
			}
			r, err := open(i)
			if err != nil {
				return nil, err
			}
			return a.images.stageLayer(r, "")
		})
		defer func() {
			cancel() // a failed load starts no more layers
			fs.discard()
		}()
	}
	parent = ""
	for i := range files {
		var err error
		if fs != nil {
			var st *staged
			if st, err = fs.take(i); err == nil && st != nil {
				_, err = a.images.commitStaged(parent, chains[i], diffIDs[i], st)
			}
		} else {
			_, err = a.images.ensureLayer(parent, chains[i], diffIDs[i], func() (io.ReadCloser, error) {
				r, err := open(i)
				return io.NopCloser(r), err
			})
		}
		if err != nil {
			return "", err
		}
		parent = chains[i]
	}
	return parent, nil
}

// Save is `docker save`: a docker-archive of the named images that is an
// OCI image layout too (index.json, a manifest per image), layers
// uncompressed as the store keeps them, shared layers written once. A
// repository named without a tag saves all its tags, as in Docker. With a
// platform, an image of another platform is refused with Docker's words.
// Each image's config and layers carry its creation time, as Docker's do.
func (a *Archives) Save(ctx context.Context, refs []string, platformSpec string, w io.Writer) error {
	wantPlat, err := platform.Parse(platformSpec)
	if err != nil {
		return err
	}
	type want struct {
		id    string
		names []reference.NamedTagged
	}
	var wants []*want
	byID := map[string]*want{}
	add := func(id string, n reference.NamedTagged) {
		wt, ok := byID[id]
		if !ok {
			wt = &want{id: id}
			byID[id] = wt
			wants = append(wants, wt)
		}
		if n != nil {
			for _, have := range wt.names {
				if have.String() == n.String() {
					return
				}
			}
			wt.names = append(wt.names, n)
		}
	}
	for _, ref := range refs {
		if n, err := reference.ParseNormalizedNamed(ref); err == nil && reference.IsNameOnly(n) && !isHex(strings.TrimPrefix(ref, "sha256:")) {
			if tagged := a.repositoryTags(n); len(tagged) > 0 {
				for _, t := range tagged {
					add(t.id, t.name)
				}
				continue
			}
		}
		img, err := a.images.lookup(ref)
		if err != nil {
			return err
		}
		var name reference.NamedTagged
		if n, err := ParseName(ref); err == nil && !strings.HasPrefix(img.ID, strings.TrimPrefix(ref, "sha256:")) {
			name, _ = reference.TagNameOnly(n).(reference.NamedTagged)
		}
		add(img.ID, name)
	}
	if wantPlat != nil {
		for _, wt := range wants {
			img, err := a.store.Image(wt.id)
			if err != nil {
				return err
			}
			c, err := a.images.configOf(img)
			if err != nil {
				return err
			}
			if !platform.Matches(*wantPlat, c.Platform) {
				return fmt.Errorf("no suitable export target found for platform %s", platform.Format(*wantPlat))
			}
		}
	}
	tw := tar.NewWriter(w)
	written := map[string]bool{}
	var manifest []archiveEntry
	var index []ocispec.Descriptor
	epoch := time.Unix(0, 0)
	for _, wt := range wants {
		img, err := a.store.Image(wt.id)
		if err != nil {
			return err
		}
		raw, err := a.store.ImageBigData(img.ID, keyConfig)
		if err != nil {
			return err
		}
		created := epoch
		if c, err := a.images.configOf(img); err == nil && c.Created != nil {
			created = *c.Created
		}
		cfgName := "blobs/sha256/" + img.ID
		if !written[cfgName] {
			written[cfgName] = true
			if err := writeTarFile(tw, cfgName, raw, created); err != nil {
				return err
			}
		}
		e := archiveEntry{Config: cfgName, RepoTags: []string{}}
		for _, n := range wt.names {
			e.RepoTags = append(e.RepoTags, reference.FamiliarString(n))
		}
		m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.NewDigestFromEncoded(digest.SHA256, img.ID), Size: int64(len(raw))},
			Layers: []ocispec.Descriptor{}}
		chain, err := a.images.layerChain(img)
		if err != nil {
			return err
		}
		for _, l := range chain {
			name := "blobs/sha256/" + l.UncompressedDigest.Encoded()
			e.Layers = append(e.Layers, name)
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: l.UncompressedDigest, Size: l.UncompressedSize})
			if written[name] {
				continue
			}
			written[name] = true
			if err := a.writeLayer(ctx, tw, name, l.ID, l.UncompressedSize, created); err != nil {
				return err
			}
		}
		mb, err := json.Marshal(m)
		if err != nil {
			return err
		}
		md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
		if name := "blobs/sha256/" + md.Digest.Encoded(); !written[name] {
			written[name] = true
			if err := writeTarFile(tw, name, mb, epoch); err != nil {
				return err
			}
		}
		if len(wt.names) == 0 {
			index = append(index, md)
		}
		for _, n := range wt.names {
			d := md
			d.Annotations = map[string]string{"io.containerd.image.name": n.String(), ocispec.AnnotationRefName: n.Tag()}
			index = append(index, d)
		}
		manifest = append(manifest, e)
	}
	b, _ := json.Marshal(manifest)
	if err := writeTarFile(tw, "manifest.json", b, epoch); err != nil {
		return err
	}
	b, _ = json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: index})
	if err := writeTarFile(tw, "index.json", b, epoch); err != nil {
		return err
	}
	if err := writeTarFile(tw, "oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`), epoch); err != nil {
		return err
	}
	return tw.Close()
}

// taggedImage is one name of an image.
type taggedImage struct {
	id   string
	name reference.NamedTagged
}

// repositoryTags lists the tagged names of repository n and their images.
func (a *Archives) repositoryTags(n reference.Named) []taggedImage {
	imgs, err := a.store.Images()
	if err != nil {
		return nil
	}
	var out []taggedImage
	for i := range imgs {
		for _, name := range imgs[i].Names {
			r, err := reference.ParseNormalizedNamed(name)
			if err != nil || r.Name() != n.Name() {
				continue
			}
			if t, ok := r.(reference.NamedTagged); ok {
				out = append(out, taggedImage{imgs[i].ID, t})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name.String() < out[j].name.String() })
	return out
}

func writeTarFile(tw *tar.Writer, name string, b []byte, mtime time.Time) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}

// writeLayer streams a layer's diff into the archive. Its size is known
// from the store; should the diff differ, the archive fails rather than
// carry a layer that does not match its digest.
func (a *Archives) writeLayer(ctx context.Context, tw *tar.Writer, name, id string, size int64, mtime time.Time) error {
	if size <= 0 {
		return fmt.Errorf("layer %s has no recorded size", id)
	}
	// A client gone (docker save killed, its pipe closed) needs no more
	// layers spooled.
	if err := ctx.Err(); err != nil {
		return err
	}
	// The store keeps its layers locked while a diff is open: spooled
	// first, so a client that reads slowly (or stops) holds no lock that
	// docker images, tag or pull wait for.
	spool, err := os.CreateTemp(a.tmpDir, "save-*.tar")
	if err != nil {
		return err
	}
	removeTemp(a.log, spool.Name())
	defer spool.Close()
	rc, err := a.images.diff(id)
	if err != nil {
		return err
	}
	n, err := io.Copy(spool, rc)
	rc.Close()
	if err != nil || n != size {
		return fmt.Errorf("layer %s: read %d of %d bytes: %v", id, n, size, err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if n, err := io.CopyN(tw, spool, size); err != nil {
		return fmt.Errorf("layer %s: wrote %d of %d bytes: %w", id, n, size, err)
	}
	return nil
}

// ImportOptions are `docker import`'s.
type ImportOptions struct {
	Ref     string   // repo[:tag] to name the image, or ""
	Changes []string // Dockerfile instructions: CMD, ENTRYPOINT, ENV, ...
	Message string
	// Platform is the image's platform ("" is this machine's); an OS
	// other than Linux is refused, as Docker on Linux refuses it.
	Platform string
}

package image

import (
	"context"
	"fmt"
	"io"
	goruntime "runtime"
	"time"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	digest "github.com/opencontainers/go-digest"

	"github.com/lodge-containers/lodge/errdefs"
)

// PullOptions are `docker pull`'s.
type PullOptions struct {
	Platform string // os/arch[/variant]; "" is this machine's
	Auth     *Auth
	// AllTags pulls every tag of a reference that names none (docker
	// pull --all-tags); a tag or digest it names is pulled alone.
	AllTags bool
}

// Pull fetches ref from its registry (a docker.io mirror first, where
// configured) into the store, reporting on p. Every blob is verified
// against its digest and every layer against the config's diff ID; a pull
// that fails leaves the other images as they were.
func (r *Registry) Pull(ctx context.Context, ref string, opts PullOptions, p ProgressSink) (string, error) {
	p = orDiscard(p)
	n, err := ParseName(ref)
	if err != nil {
		return "", err
	}
	if opts.AllTags {
		// ParseName named latest; the repository alone is asked.
		if named, perr := reference.ParseNormalizedNamed(ref); perr == nil && reference.IsNameOnly(named) {
			n = named
		} else {
			opts.AllTags = false
		}
	}
	plat, err := parsePlatform(opts.Platform)
	if err != nil {
		return "", err
	}
	var id string
	err = r.fromSources(n, func(src string) (err error) {
		if opts.AllTags {
			id, err = r.pullAllFrom(ctx, n, src, plat, opts.Auth, p)
			return err
		}
		var fresh bool
		if id, fresh, err = r.pullFrom(ctx, n, src, plat, opts.Auth, p); err == nil {
			pullStatus(p, n, fresh)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

func parsePlatform(s string) (v1.Platform, error) {
	if s == "" {
		return v1.Platform{OS: "linux", Architecture: goruntime.GOARCH}, nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil {
		return v1.Platform{}, errdefs.InvalidArgumentf("invalid platform %q: %v", s, err)
	}
	return *p, nil
}

func (r *Registry) pullFrom(ctx context.Context, n reference.Named, src string, plat v1.Platform, a *Auth, p ProgressSink) (id string, fresh bool, err error) {
	rref, err := r.remoteRef(n, src)
	if err != nil {
		return "", false, err
	}
	// Downloads still running when the pull ends (it failed) stop with it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ropts := append(r.remoteOptions(ctx, a), remote.WithPlatform(plat))
	tagOrDigest := "latest"
	if t, ok := n.(reference.Tagged); ok {
		tagOrDigest = t.Tag()
	}
	if d, ok := n.(reference.Digested); ok {
		tagOrDigest = d.Digest().String()
	}
	desc, err := remote.Get(rref, ropts...)
	if err != nil {
		return "", false, registryError("pull", reference.FamiliarString(n), err)
	}
	p.Status(tagOrDigest, "Pulling from "+reference.Path(n))
	img, err := desc.Image()
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", reference.FamiliarString(n), err)
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return "", false, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", false, err
	}
	if cfg.OS != "" && cfg.OS != plat.OS || cfg.Architecture != "" && cfg.Architecture != plat.Architecture {
		return "", false, errdefs.InvalidArgumentf("image %s is for %s/%s, not %s/%s", reference.FamiliarString(n), cfg.OS, cfg.Architecture, plat.OS, plat.Architecture)
	}
	layers, err := img.Layers()
	if err != nil {
		return "", false, err
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return "", false, fmt.Errorf("image %s has %d layers but %d diff IDs", reference.FamiliarString(n), len(layers), len(cfg.RootFS.DiffIDs))
	}
	id = digest.FromBytes(rawConfig).Encoded()
	// Docker's "newer image": the name did not name this image yet (a
	// digest: the image was not there).
	lookup := id
	if _, tagged := n.(reference.Tagged); tagged {
		lookup = n.String()
	}
	had, lookupErr := r.store.Image(lookup)
	existed := lookupErr == nil && had.ID == id
	chains := make([]digest.Digest, len(layers))
	var parent digest.Digest
	for i := range layers {
		chains[i] = chainID(parent, digest.Digest(cfg.RootFS.DiffIDs[i].String()))
		parent = chains[i]
	}
	parent, err = r.pullLayers(ctx, layers, chains, cfg.RootFS.DiffIDs, p, reference.FamiliarString(n))
	if err != nil {
		return "", false, err
	}
	manifest, _ := img.RawManifest()
	repoDigest := n.Name() + "@" + desc.Digest.String()
	var names []string
	if _, ok := n.(reference.Tagged); ok {
		names = []string{n.String()}
	}
	created := time.Now()
	if !cfg.Created.IsZero() {
		created = cfg.Created.Time
	}
	if _, err := r.images.createImage(rawConfig, layerID(parent), names, manifest, repoDigest, created); err != nil {
		return "", false, err
	}
	p.Status("", "Digest: "+desc.Digest.String())
	return id, !existed, nil
}

// pullStatus is the line that ends a pull of n, as Docker words it.
func pullStatus(p ProgressSink, n reference.Named, fresh bool) {
	if fresh {
		p.Status("", "Status: Downloaded newer image for "+reference.FamiliarString(n))
	} else {
		p.Status("", "Status: Image is up to date for "+reference.FamiliarString(n))
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

func shortID(l v1.Layer) string {
	d, err := l.Digest()
	if err != nil {
		return "layer"
	}
	return d.Hex[:12]
}

func goarch() string { return goruntime.GOARCH }

// pullLayers brings the image's missing layers into the store, bottom
// first, and returns the top one's chain ID. Where the driver can stage,
// they download and unpack at once (fetchAll); elsewhere each streams
// into the store in turn.
func (r *Registry) pullLayers(ctx context.Context, layers []v1.Layer, chains []digest.Digest, diffIDs []v1.Hash, p ProgressSink, ref string) (digest.Digest, error) {
	var fs *fetches
	if r.images.canStage() {
		ctx, cancel := context.WithCancel(ctx)
		fs = r.fetchAll(ctx, layers, chains, p, ref)
		defer func() {
			cancel() // a failed pull stops the downloads still running
			fs.discard()
		}()
	}
	var parent digest.Digest
	for i, l := range layers {
		diffID := digest.Digest(diffIDs[i].String())
		short := shortID(l)
		var did bool
		var err error
		if fs != nil {
			var st *staged
			if st, err = fs.take(i); err == nil && st == nil {
				did = true
			} else if err == nil {
				did, err = r.images.commitStaged(parent, chains[i], diffID, st)
			}
		} else {
			did, err = r.images.ensureLayer(parent, chains[i], diffID, func() (io.ReadCloser, error) {
				p.Status(short, "Pulling fs layer")
				rc, err := l.Compressed() // verified against its digest as it is read
				if err != nil {
					return nil, registryError("pull", ref, err)
				}
				size, _ := l.Size()
				return readCloser{&bar{r: rc, p: p, id: short, status: "Downloading", total: size}, rc}, nil
			})
		}
		if err != nil {
			return "", err
		}
		if did {
			p.Status(short, "Already exists")
		} else {
			p.Status(short, "Pull complete")
		}
		parent = chains[i]
	}
	return parent, nil
}

// pullAllFrom pulls every tag the registry lists for the repository n,
// each as a pull of its own, and ends with one status line for n, as
// Docker does for docker pull --all-tags. It returns the last image's ID.
func (r *Registry) pullAllFrom(ctx context.Context, n reference.Named, src string, plat v1.Platform, a *Auth, p ProgressSink) (string, error) {
	rref, err := r.remoteRef(n, src)
	if err != nil {
		return "", err
	}
	tags, err := remote.List(rref.Context(), r.remoteOptions(ctx, a)...)
	if err != nil {
		return "", registryError("pull", reference.FamiliarString(n), err)
	}
	if len(tags) == 0 {
		return "", errdefs.NotFoundf("repository %s has no tags", reference.FamiliarString(n))
	}
	var id string
	var anyFresh bool
	for _, tag := range tags {
		tagged, err := reference.WithTag(n, tag)
		if err != nil {
			return "", fmt.Errorf("the registry lists tag %q of %s: %w", tag, reference.FamiliarString(n), err)
		}
		fresh := false
		if id, fresh, err = r.pullFrom(ctx, tagged, src, plat, a, p); err != nil {
			return "", err
		}
		anyFresh = anyFresh || fresh
	}
	pullStatus(p, n, anyFresh)
	return id, nil
}

package buildkitd

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/cache"
	cacheconfig "github.com/moby/buildkit/cache/config"
	"github.com/moby/buildkit/exporter"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/util/progress"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Loader puts a docker-archive (what `docker save` writes) into lodge's
// image store with the tags its manifest.json names. It fails with the
// store's message when the archive is refused.
type Loader interface {
	Load(ctx context.Context, archive io.Reader) error
}

// mobyExporter is Docker's "moby" exporter for lodge: BuildKit's image
// exporter writes the image into the worker's content store (so layers,
// config and history are BuildKit's, byte for byte), then the image goes
// to lodged as a docker-archive. Names are applied by lodged's load, not
// by BuildKit, which has no image store here.
type mobyExporter struct {
	image   exporter.Exporter
	content content.Provider
	loader  Loader
}

func (e *mobyExporter) Resolve(ctx context.Context, id int, attrs map[string]string) (exporter.ExporterInstance, error) {
	var names []string
	inner := map[string]string{}
	for k, v := range attrs {
		inner[k] = v
	}
	if raw := attrs[string(exptypes.OptKeyName)]; raw != "" {
		for _, n := range strings.Split(raw, ",") {
			ref, err := reference.ParseNormalizedNamed(strings.TrimSpace(n))
			if err != nil {
				return nil, fmt.Errorf("image name %q: %w", n, err)
			}
			names = append(names, reference.TagNameOnly(ref).String())
		}
	}
	// The layers only travel over a local socket into a store that keeps
	// them uncompressed: gzip would cost CPU twice for nothing.
	if _, ok := inner["compression"]; !ok {
		inner["compression"] = "uncompressed"
	}
	in, err := e.image.Resolve(ctx, id, inner)
	if err != nil {
		return nil, err
	}
	return &mobyInstance{ExporterInstance: in, e: e, names: names}, nil
}

type mobyInstance struct {
	exporter.ExporterInstance
	e     *mobyExporter
	names []string
}

func (i *mobyInstance) Name() string { return "exporting to lodge's image store" }
func (i *mobyInstance) Type() string { return mobyExporterName }

func (i *mobyInstance) Export(ctx context.Context, src *exporter.Source, info exporter.ExportBuildInfo) (map[string]string, exporter.FinalizeFunc, exporter.DescriptorReference, error) {
	// Attestations would turn the image into an index with extra
	// manifests that a docker-archive cannot carry; Docker's moby exporter
	// drops them too.
	plain := &exporter.Source{Ref: src.Ref, Refs: src.Refs, Metadata: src.Metadata}
	resp, finalize, ref, err := i.ExporterInstance.Export(ctx, plain, info)
	if err != nil {
		return nil, nil, nil, err
	}
	if ref == nil {
		return nil, nil, nil, fmt.Errorf("buildkit's image exporter returned no descriptor")
	}
	done := progress.OneOff(ctx, "loading the image into lodge")
	err = i.unlazy(ctx, plain, info.SessionID)
	var cfg ocispecs.Descriptor
	if err == nil {
		cfg, err = i.load(ctx, ref.Descriptor())
	}
	if err := done(err); err != nil {
		_ = ref.Release() // the export failed: that error is the one to report
		return nil, nil, nil, err
	}
	// What Docker's moby exporter reports, which users and scripts read:
	// the image ID, then each name (lodged's load applied them).
	_ = progress.OneOff(ctx, "writing image "+cfg.Digest.String())(nil) // done(nil) is nil
	for _, n := range i.names {
		_ = progress.OneOff(ctx, "naming to "+n)(nil)
	}
	out := map[string]string{
		exptypes.ExporterImageConfigDigestKey: cfg.Digest.String(),
		exptypes.ExporterImageDigestKey:       cfg.Digest.String(), // an image's ID in a docker store is its config digest
	}
	if d, ok := resp[exptypes.ExporterImageDescriptorKey]; ok {
		out[exptypes.ExporterImageDescriptorKey] = d
	}
	if len(i.names) > 0 {
		out[exptypes.ExporterImageNameKey] = strings.Join(i.names, ",")
	}
	return out, finalize, ref, nil
}

// unlazy fetches the layers BuildKit has not pulled: a base image's layers
// that no step needed stay in their registry (or lodge's store) until
// someone reads them, and the archive reads them all. BuildKit's own image
// exporter does the same before it stores an image.
func (i *mobyInstance) unlazy(ctx context.Context, src *exporter.Source, sessionID string) error {
	refs := []cache.ImmutableRef{src.Ref}
	for _, r := range src.Refs {
		refs = append(refs, r)
	}
	cfg := cacheconfig.RefConfig{Compression: i.Config().Compression()}
	for _, r := range refs {
		if r == nil {
			continue
		}
		remotes, err := r.GetRemotes(ctx, false, cfg, false, session.NewGroup(sessionID))
		if err != nil {
			return err
		}
		if len(remotes) == 0 {
			continue
		}
		if u, ok := remotes[0].Provider.(cache.Unlazier); ok {
			if err := u.Unlazy(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// load streams the image behind desc to the Loader and returns its config
// digest.
func (i *mobyInstance) load(ctx context.Context, desc ocispecs.Descriptor) (ocispecs.Descriptor, error) {
	mfst, err := i.manifest(ctx, desc)
	if err != nil {
		return ocispecs.Descriptor{}, err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeArchive(ctx, i.e.content, mfst, i.names, pw)) }()
	err = i.e.loader.Load(ctx, pr)
	pr.CloseWithError(io.ErrClosedPipe) // stops the writer if the loader gave up early
	return mfst.Config, err
}

// manifest finds the single-platform manifest: the image exporter writes an
// index when the build has several platforms.
func (i *mobyInstance) manifest(ctx context.Context, desc ocispecs.Descriptor) (ocispecs.Manifest, error) {
	var m ocispecs.Manifest
	if images.IsIndexType(desc.MediaType) {
		var idx ocispecs.Index
		if err := readJSON(ctx, i.e.content, desc, &idx); err != nil {
			return m, err
		}
		var picked []ocispecs.Descriptor
		for _, d := range idx.Manifests {
			if images.IsManifestType(d.MediaType) && (d.Platform == nil || d.Platform.OS != "unknown") {
				picked = append(picked, d)
			}
		}
		if len(picked) != 1 {
			return m, fmt.Errorf("the build made %d platform images; lodge's image store keeps one per name: build one --platform, or export with --output type=oci", len(picked))
		}
		desc = picked[0]
	}
	if !images.IsManifestType(desc.MediaType) {
		return m, fmt.Errorf("exported %s is not an image manifest", desc.MediaType)
	}
	err := readJSON(ctx, i.e.content, desc, &m)
	return m, err
}

func readJSON(ctx context.Context, p content.Provider, desc ocispecs.Descriptor, v any) error {
	b, err := content.ReadBlob(ctx, p, desc)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// writeArchive writes the docker-archive layout `docker load` reads:
// manifest.json naming the config, the layers in order and the tags.
func writeArchive(ctx context.Context, p content.Provider, m ocispecs.Manifest, names []string, w io.Writer) error {
	tw := tar.NewWriter(w)
	blob := func(d ocispecs.Descriptor) string {
		return "blobs/" + d.Digest.Algorithm().String() + "/" + d.Digest.Encoded()
	}
	entry := struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{Config: blob(m.Config), RepoTags: names, Layers: []string{}}
	written := map[string]bool{}
	for _, d := range append([]ocispecs.Descriptor{m.Config}, m.Layers...) {
		name := blob(d)
		if d.Digest != m.Config.Digest {
			entry.Layers = append(entry.Layers, name)
		}
		if written[name] {
			continue
		}
		written[name] = true
		if err := copyBlob(ctx, p, d, name, tw); err != nil {
			return err
		}
	}
	b, err := json.Marshal([]any{entry})
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(b); err != nil {
		return err
	}
	return tw.Close()
}

func copyBlob(ctx context.Context, p content.Provider, d ocispecs.Descriptor, name string, tw *tar.Writer) error {
	ra, err := p.ReaderAt(ctx, d)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	defer func() { _ = ra.Close() }() // read only
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: ra.Size(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, io.NewSectionReader(ra, 0, ra.Size()))
	return err
}

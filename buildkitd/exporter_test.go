package buildkitd

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// put stores b in the content store and returns its descriptor.
func put(t *testing.T, cs content.Store, mediaType string, b []byte) ocispecs.Descriptor {
	t.Helper()
	d := ocispecs.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if err := content.WriteBlob(context.Background(), cs, d.Digest.String(), bytes.NewReader(b), d); err != nil {
		t.Fatal(err)
	}
	return d
}

func putJSON(t *testing.T, cs content.Store, mediaType string, v any) ocispecs.Descriptor {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return put(t, cs, mediaType, b)
}

func TestArchiveOfBuiltImage(t *testing.T) {
	cs, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := put(t, cs, ocispecs.MediaTypeImageConfig, []byte(`{"rootfs":{"type":"layers"}}`))
	l1 := put(t, cs, ocispecs.MediaTypeImageLayer, []byte("layer-one"))
	l2 := put(t, cs, ocispecs.MediaTypeImageLayer, []byte("layer-two"))
	// The same layer twice (a step that changed nothing twice) is one
	// blob in the archive but two entries in Layers.
	mf := ocispecs.Manifest{MediaType: ocispecs.MediaTypeImageManifest, Config: cfg, Layers: []ocispecs.Descriptor{l1, l2, l1}}
	mfDesc := putJSON(t, cs, ocispecs.MediaTypeImageManifest, mf)
	// BuildKit's index when attestations ride along: the image and an
	// attestation manifest for platform unknown/unknown.
	att := putJSON(t, cs, ocispecs.MediaTypeImageManifest, ocispecs.Manifest{Config: cfg})
	linux := mfDesc
	linux.Platform = &ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	att.Platform = &ocispecs.Platform{OS: "unknown", Architecture: "unknown"}
	idx := putJSON(t, cs, ocispecs.MediaTypeImageIndex, ocispecs.Index{MediaType: ocispecs.MediaTypeImageIndex, Manifests: []ocispecs.Descriptor{linux, att}})

	i := &mobyInstance{e: &mobyExporter{content: cs}}
	for _, d := range []ocispecs.Descriptor{mfDesc, idx} {
		got, err := i.manifest(context.Background(), d)
		if err != nil || got.Config.Digest != cfg.Digest || len(got.Layers) != 3 {
			t.Errorf("manifest behind %s: %+v, %v", d.MediaType, got, err)
		}
	}
	two := linux
	two.Platform = &ocispecs.Platform{OS: "linux", Architecture: "arm64"}
	multi := putJSON(t, cs, ocispecs.MediaTypeImageIndex, ocispecs.Index{Manifests: []ocispecs.Descriptor{linux, two}})
	if _, err := i.manifest(context.Background(), multi); err == nil || !strings.Contains(err.Error(), "2 platform images") {
		t.Errorf("two platforms: %v", err)
	}

	var buf bytes.Buffer
	if err := writeArchive(context.Background(), cs, mf, []string{"docker.io/library/app:1"}, &buf); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	var order []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = string(b)
		order = append(order, h.Name)
	}
	if len(order) != 4 {
		t.Errorf("archive entries %v: want config, two layers, manifest.json", order)
	}
	var entries []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal([]byte(files["manifest.json"]), &entries); err != nil || len(entries) != 1 {
		t.Fatalf("manifest.json %q: %v", files["manifest.json"], err)
	}
	e := entries[0]
	blob := func(d ocispecs.Descriptor) string { return "blobs/sha256/" + d.Digest.Encoded() }
	if e.Config != blob(cfg) || strings.Join(e.Layers, " ") != strings.Join([]string{blob(l1), blob(l2), blob(l1)}, " ") ||
		len(e.RepoTags) != 1 || e.RepoTags[0] != "docker.io/library/app:1" {
		t.Errorf("manifest.json entry %+v", e)
	}
	if files[blob(l2)] != "layer-two" {
		t.Errorf("layer blob: %q", files[blob(l2)])
	}
}

package image

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	goruntime "runtime"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lodge-containers/lodge/errdefs"
)

// TestLocalManifestBlobsMatch: every blob the made-up manifest names is
// served with exactly the bytes its digest says, since BuildKit checks
// each one; and the manifest is found again by its own digest.
func TestLocalManifestBlobsMatch(t *testing.T) {
	reg := testRegistry(t, nil)
	s := testService(t)
	r := NewRegistry(s)
	push(t, reg+"/team/app:1", randomImage(t, 3, goruntime.GOARCH))
	if _, err := pull(s, reg+"/team/app:1", ""); err != nil {
		t.Fatal(err)
	}
	body, dgst, err := r.LocalManifest(reg + "/team/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if dgst != digest.FromBytes(body) {
		t.Errorf("manifest digest %s is not its body's", dgst)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 3 {
		t.Fatalf("%d layers, want 3", len(m.Layers))
	}
	for _, d := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		rc, size, err := r.LocalBlob(context.Background(), d.Digest)
		if err != nil {
			t.Fatalf("blob %s: %v", d.Digest, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || digest.FromBytes(b) != d.Digest || int64(len(b)) != d.Size || size != d.Size {
			t.Errorf("blob %s: %d bytes (said %d, manifest %d), digest %s, %v", d.Digest, len(b), size, d.Size, digest.FromBytes(b), err)
		}
	}
	again, _, err := r.LocalManifest(dgst.String())
	if err != nil || string(again) != string(body) {
		t.Errorf("manifest by its digest: %v", err)
	}
	for _, ref := range []string{reg + "/team/other:1", digest.FromString("x").String()} {
		if _, _, err := r.LocalManifest(ref); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("LocalManifest(%s): %v, want NotFound", ref, err)
		}
	}
	if _, _, err := r.LocalBlob(context.Background(), digest.FromString("x")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown blob: %v, want NotFound", err)
	}
}

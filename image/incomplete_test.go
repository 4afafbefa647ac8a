package image

import (
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// A crash between the store's image record and its config leaves a half
// image: creating the same image repairs it, and RemoveIncomplete (run at
// lodged's start) removes those nobody made again.
func TestIncompleteImages(t *testing.T) {
	s := testService(t)
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	id := digest.FromBytes(cfg).Encoded()
	if _, err := s.store.CreateImage(id, nil, "", "", nil); err != nil { // the record alone
		t.Fatal(err)
	}
	if _, err := s.createImage(cfg, "", []string{"docker.io/library/half:1"}, nil, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Resolve(t.Context(), "half:1"); err != nil {
		t.Fatalf("the repaired image does not resolve: %v", err)
	}

	other := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Cmd":["x"]}}`)
	oid := digest.FromBytes(other).Encoded()
	if _, err := s.store.CreateImage(oid, []string{"docker.io/library/left:1"}, "", "", nil); err != nil {
		t.Fatal(err)
	}
	s.RemoveIncomplete()
	if _, err := s.store.Image(oid); err == nil {
		t.Error("an image without a config survived RemoveIncomplete")
	}
	if _, err := s.store.Image(id); err != nil {
		t.Errorf("a complete image was removed: %v", err)
	}
}

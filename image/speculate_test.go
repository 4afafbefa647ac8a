package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"slices"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// layerTar is a layer holding one file.
func layerTar(t *testing.T, name, body string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(body))
	tw.Close()
	return b.Bytes()
}

// loadArchive is a docker-archive as docker save writes it: blobs first,
// manifest.json last. The second layer is gzipped; a tar no manifest
// names rides along. wrongID gives the second layer a diff ID its content
// does not have.
func loadArchive(t *testing.T, wrongID bool) []byte {
	t.Helper()
	l1, l2 := layerTar(t, "one", "1"), layerTar(t, "two", "22")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(l2)
	zw.Close()
	ids := []digest.Digest{digest.FromBytes(l1), digest.FromBytes(l2)}
	if wrongID {
		ids[1] = digest.FromBytes([]byte("something else"))
	}
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": ids}})
	manifest, _ := json.Marshal([]archiveEntry{{Config: "config.json", RepoTags: []string{"spec:1"}, Layers: []string{"l1/layer.tar", "l2/layer.tar.gz"}}})
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range []struct {
		name string
		body []byte
	}{{"config.json", cfg}, {"l1/layer.tar", l1}, {"junk/layer.tar", layerTar(t, "junk", "j")}, {"l2/layer.tar.gz", gz.Bytes()}, {"manifest.json", manifest}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		tw.Write(f.body)
	}
	tw.Close()
	return b.Bytes()
}

// docker load unpacks the archive's layers while it spools (where the
// driver can stage), and leaves no staging directory behind: not for a
// tar no manifest names, not for a load that fails.
func TestLoadSpeculates(t *testing.T) { onDrivers(t, testLoadSpeculates) }

func testLoadSpeculates(t *testing.T, s *Service) {
	a := NewArchives(s)
	st, err := a.spool(context.Background(), bytes.NewReader(loadArchive(t, false)))
	if err != nil {
		t.Fatal(err)
	}
	if s.canStage() {
		var names []string
		for n := range st.spec.by {
			names = append(names, n)
		}
		slices.Sort(names)
		if want := []string{"junk/layer.tar", "l1/layer.tar", "l2/layer.tar.gz"}; !slices.Equal(names, want) {
			t.Errorf("unpacked while spooling: %v, want %v", names, want)
		}
	}
	st.Close()
	noStaged(t, s)

	before := s.Count()
	if err := a.Load(context.Background(), bytes.NewReader(loadArchive(t, true)), nil); err == nil {
		t.Error("a layer whose content is not its diff ID was loaded")
	}
	noStaged(t, s)
	if s.Count() != before {
		t.Errorf("a failed load changed the images: %d, then %d", before, s.Count())
	}

	if err := a.Load(context.Background(), bytes.NewReader(loadArchive(t, false)), nil); err != nil {
		t.Fatal(err)
	}
	noStaged(t, s)
	img, err := s.lookup("spec:1")
	if err != nil {
		t.Fatal(err)
	}
	layers, err := s.layerChain(img)
	if err != nil || len(layers) != 2 {
		t.Fatalf("layers %v, %v", layers, err)
	}
	l1, l2 := layerTar(t, "one", "1"), layerTar(t, "two", "22")
	if layers[0].UncompressedDigest != digest.FromBytes(l1) || layers[1].UncompressedDigest != digest.FromBytes(l2) {
		t.Errorf("layers %s, %s; want the archive's", layers[0].UncompressedDigest, layers[1].UncompressedDigest)
	}

	// A blob named by the digest of a layer the store has is not unpacked
	// again (docker save's OCI layout names blobs so).
	l3 := layerTar(t, "three", "333")
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, body := range [][]byte{l1, l3} {
		tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + digest.FromBytes(body).Encoded(), Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write(body)
	}
	tw.Close()
	if st, err = a.spool(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if s.canStage() {
		_, had := st.spec.by["blobs/sha256/"+digest.FromBytes(l1).Encoded()]
		_, fresh := st.spec.by["blobs/sha256/"+digest.FromBytes(l3).Encoded()]
		if had || !fresh {
			t.Errorf("unpacked while spooling: the store's layer %v (want false), a new one %v (want true)", had, fresh)
		}
	}
}

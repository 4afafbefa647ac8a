package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	cstorage "go.podman.io/storage"
	"go.podman.io/storage/pkg/reexec"
	stypes "go.podman.io/storage/types"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/internal/nstest"
)

func TestMain(m *testing.M) {
	// go.podman.io/storage unpacks layers in a re-executed test binary.
	if reexec.Init() {
		return
	}
	// Nothing here may reach past loopback: a pull that falls back to
	// Docker Hub meets a proxy that is not there. (Go never proxies
	// loopback, so the test registries are reached directly.)
	os.Setenv("HTTPS_PROXY", "http://127.0.0.1:9")
	os.Setenv("HTTP_PROXY", "http://127.0.0.1:9")
	os.Unsetenv("NO_PROXY")
	// Storing layers takes chroot and chown: unprivileged, the tests run
	// as root of a user namespace of their own, as lodged runs.
	nstest.Reexec()
	os.Exit(m.Run())
}

// testService is an image service over a throwaway vfs store.
func testService(t *testing.T, mirrors ...string) *Service {
	return newTestService(t, "vfs", mirrors...)
}

func testServiceF(f *testing.F) *Service { return newTestService(f, "vfs") }

// onDrivers runs f over a vfs store, whose layers go in one at a time,
// and over an overlay store, whose layers unpack at once into staging
// directories first, as lodged's do.
func onDrivers(t *testing.T, f func(t *testing.T, s *Service)) {
	for _, d := range []string{"vfs", "overlay"} {
		t.Run(d, func(t *testing.T) {
			s := newTestService(t, d)
			if want := d == "overlay"; s.canStage() != want {
				t.Fatalf("the %s store stages layers: %v, want %v", d, s.canStage(), want)
			}
			f(t, s)
		})
	}
}

// noStaged fails t if a staging directory is left in s's store.
func noStaged(t *testing.T, s *Service) {
	t.Helper()
	if ents, _ := os.ReadDir(filepath.Join(s.store.GraphRoot(), "overlay", "staging")); len(ents) > 0 {
		t.Errorf("staging directories left behind: %v", ents)
	}
}

func newTestService(t testing.TB, driver string, mirrors ...string) *Service {
	t.Helper()
	dir := t.TempDir()
	// In a single-id namespace, chowns to ids a layer names that are not
	// mapped are ignored, as lodged does in that mode.
	st, err := cstorage.GetStore(stypes.StoreOptions{
		RunRoot: dir + "/run", GraphRoot: dir + "/graph", GraphDriverName: driver,
		GraphDriverOptions: []string{driver + ".ignore_chown_errors=true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Shutdown(true) })
	os.Mkdir(dir+"/tmp", 0o700)
	return New(st, Config{TmpDir: dir + "/tmp", Mirrors: mirrors})
}

// testRegistry is an in-memory registry on loopback (plain HTTP, as lodge
// speaks to loopback registries). wrap, when not nil, sits in front of it.
func testRegistry(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(nopLogger()))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func push(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

func randomImage(t *testing.T, layers int64, arch string) v1.Image {
	t.Helper()
	img, err := random.Image(4096, layers)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// withLayer is img with one more random layer on top.
func withLayer(t *testing.T, img v1.Image) v1.Image {
	t.Helper()
	extra, err := random.Layer(2048, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	child, err := mutate.AppendLayers(img, extra)
	if err != nil {
		t.Fatal(err)
	}
	return child
}

func configID(t *testing.T, img v1.Image) string {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h.Hex
}

func pull(s *Service, ref string, platform string) (string, error) {
	return NewRegistry(s).Pull(context.Background(), ref, PullOptions{Platform: platform}, nil)
}

func TestPullLayersShared(t *testing.T) { onDrivers(t, testPullLayersShared) }

func testPullLayersShared(t *testing.T, s *Service) {
	reg := testRegistry(t, nil)
	base := randomImage(t, 3, goruntime.GOARCH)
	push(t, reg+"/team/base:1", base)
	// A second image on top of the first shares its three layers.
	push(t, reg+"/team/child:1", withLayer(t, base))

	id, err := pull(s, reg+"/team/base:1", "")
	if err != nil {
		t.Fatal(err)
	}
	if id != configID(t, base) {
		t.Errorf("image ID %s, want the config digest %s", id, configID(t, base))
	}
	if _, err := pull(s, reg+"/team/child:1", ""); err != nil {
		t.Fatal(err)
	}
	layers, err := s.store.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 4 {
		t.Errorf("%d layers stored for 3 shared + 1 own, want 4", len(layers))
	}
	noStaged(t, s)
	// Each layer gives back the very tar it came from (docker save and
	// push send it), rebuilt from what the store recorded.
	for _, l := range layers {
		rc, err := s.diff(l.ID)
		if err != nil {
			t.Fatal(err)
		}
		sum := digest.Canonical.Digester()
		_, err = io.Copy(sum.Hash(), rc)
		rc.Close()
		if err != nil || sum.Digest() != l.UncompressedDigest {
			t.Errorf("layer %s reads back as %s (%v), want its diff ID %s", l.ID[:12], sum.Digest(), err, l.UncompressedDigest)
		}
	}
	h, err := s.History(reg + "/team/child:1")
	if err != nil || len(h) == 0 {
		t.Errorf("history of the pulled image: %v %v", h, err)
	}
}

func TestPullPicksPlatformFromIndex(t *testing.T) {
	reg := testRegistry(t, nil)
	s := testService(t)
	other := "arm64"
	if goruntime.GOARCH == "arm64" {
		other = "amd64"
	}
	native, foreign := randomImage(t, 1, goruntime.GOARCH), randomImage(t, 1, other)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: foreign, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: other}}},
		mutate.IndexAddendum{Add: native, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: goruntime.GOARCH}}},
	)
	r, _ := name.ParseReference(reg+"/multi/app:1", name.Insecure)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	id, err := pull(s, reg+"/multi/app:1", "")
	if err != nil {
		t.Fatal(err)
	}
	if id != configID(t, native) {
		t.Errorf("pulled %s, want this machine's image %s", id, configID(t, native))
	}
	id, err = pull(s, reg+"/multi/app:1", "linux/"+other)
	if err != nil {
		t.Fatal(err)
	}
	if id != configID(t, foreign) {
		t.Errorf("--platform linux/%s pulled %s, want %s", other, id, configID(t, foreign))
	}
	if _, err := pull(s, reg+"/multi/app:1", "linux/s390x"); err == nil {
		t.Error("a platform the index lacks was pulled")
	}
}

func TestPullZstdLayer(t *testing.T) { onDrivers(t, testPullZstdLayer) }

func testPullZstdLayer(t *testing.T, s *Service) {
	reg := testRegistry(t, nil)
	var tarBuf bytes.Buffer
	writeTestTar(t, &tarBuf, "hello.txt", "zstd layer\n")
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBuf.Bytes())), nil
	}, tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	push(t, reg+"/z/std:1", img)
	id, err := pull(s, reg+"/z/std:1", "")
	if err != nil {
		t.Fatal(err)
	}
	sImg, err := s.store.Image(id)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := s.diff(sImg.TopLayer)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if !bytes.Contains(b, []byte("zstd layer\n")) {
		t.Error("the zstd layer's file is not in the stored layer")
	}
}

// An image whose config names another diff ID than its layer's content
// (each blob matches its digest): the pull fails, says so, and stores no
// layer and no image.
func TestPullWrongDiffID(t *testing.T) { onDrivers(t, testPullWrongDiffID) }

func testPullWrongDiffID(t *testing.T, s *Service) {
	reg := testRegistry(t, nil)
	img := randomImage(t, 2, goruntime.GOARCH)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs[1] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	push(t, reg+"/wrong/diff:1", img)
	_, err = pull(s, reg+"/wrong/diff:1", "")
	if err == nil || !strings.Contains(err.Error(), "does not match the image's diff ID") {
		t.Fatalf("pull of an image whose layer is not its diff ID: %v", err)
	}
	if _, err := s.lookup(reg + "/wrong/diff:1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the image is listed: %v", err)
	}
	layers, _ := s.store.Layers()
	for _, l := range layers {
		if l.UncompressedDigest == digest.Digest(cf.RootFS.DiffIDs[1].String()) || l.UncompressedDigest == "" {
			t.Errorf("layer %s stored with content %q", l.ID[:12], l.UncompressedDigest)
		}
	}
	if len(layers) > 1 {
		t.Errorf("%d layers stored, want at most the right bottom one", len(layers))
	}
	noStaged(t, s)
}

// A registry that serves a blob whose bytes do not match its digest: the
// pull fails, says so, and leaves the images already there intact.
func TestPullCorruptBlobLosesNothing(t *testing.T) { onDrivers(t, testPullCorruptBlobLosesNothing) }

func testPullCorruptBlobLosesNothing(t *testing.T, s *Service) {
	var corrupt atomic.Value // digest string to corrupt
	corrupt.Store("")
	reg := testRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := corrupt.Load().(string)
			d, head := strings.CutPrefix(c, "head:")
			if d != "" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+d) {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				body := rec.Body.Bytes()
				switch {
				case len(body) <= 10:
				case head:
					// The gzip header's time: the blob is wrong, its
					// content (and so its diff ID) is not.
					body[4] ^= 0xff
				default:
					body[len(body)/2] ^= 0xff
				}
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				w.Write(body)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	good := randomImage(t, 2, goruntime.GOARCH)
	push(t, reg+"/keep/good:1", good)
	goodID, err := pull(s, reg+"/keep/good:1", "")
	if err != nil {
		t.Fatal(err)
	}
	// Layer 0 is the first committed, layer 1 the one that waits for it:
	// both must be checked, whether the blob's content is wrong or only
	// the blob (its gzip header). Each case has an image of its own, whose
	// layers the store does not have yet.
	var bad string
	for i := range 4 {
		bad = fmt.Sprintf("%s/keep/bad%d:1", reg, i)
		img := randomImage(t, 2, goruntime.GOARCH)
		push(t, bad, img)
		layers, _ := img.Layers()
		d, _ := layers[i%2].Digest()
		if i < 2 {
			corrupt.Store(d.String())
		} else {
			corrupt.Store("head:" + d.String())
		}
		_, err = pull(s, bad, "")
		if err == nil {
			t.Fatalf("a corrupt blob (%s) was accepted", corrupt.Load())
		}
		if !strings.Contains(err.Error(), "checksum") || !strings.Contains(err.Error(), "layer") {
			t.Errorf("the error does not say the layer's content was wrong: %v", err)
		}
		if _, err := s.lookup(bad); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("a half-pulled image is listed: %v", err)
		}
		if _, err := s.Inspect(goodID); err != nil {
			t.Errorf("the good image was disturbed: %v", err)
		}
	}
	if _, err := pull(s, reg+"/keep/good:1", ""); err != nil {
		t.Errorf("pulling the good image again: %v", err)
	}
	if ents, _ := os.ReadDir(s.cfg.TmpDir); len(ents) > 0 {
		t.Errorf("temporary files left behind: %v", ents)
	}
	noStaged(t, s)
	// Once the registry serves the right bytes, the pull completes.
	corrupt.Store("")
	if _, err := pull(s, bad, ""); err != nil {
		t.Errorf("pull after the registry recovered: %v", err)
	}
}

// docker.io names go to a configured mirror first, as registry-mirrors in
// Docker's daemon.json do; nothing here reaches Docker Hub.
func TestPullFromMirror(t *testing.T) {
	var hits atomic.Int32
	reg := testRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			h.ServeHTTP(w, r)
		})
	})
	img := randomImage(t, 1, goruntime.GOARCH)
	push(t, reg+"/library/busybox:latest", img)
	before := hits.Load()
	s := testService(t, "http://"+reg)
	id, err := pull(s, "busybox", "")
	if err != nil {
		t.Fatal(err)
	}
	if id != configID(t, img) || hits.Load() == before {
		t.Errorf("busybox did not come from the mirror (id %s, %d requests)", id, hits.Load()-before)
	}
	if _, err := s.lookup("docker.io/library/busybox:latest"); err != nil {
		t.Errorf("the image is not known by its docker.io name: %v", err)
	}
}

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }

func writeTestTar(t *testing.T, w io.Writer, name, body string) {
	t.Helper()
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(body))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

package build

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/lodge-containers/lodge/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeEntry is one tar entry a fake layer holds.
type fakeEntry struct {
	Name     string
	Type     byte
	Mode     int64
	UID, GID int
	Link     string
	Body     string
}

// fakeBackend keeps images in memory. Apply records the layer's entries,
// Run records the request and calls onRun, which may fail it.
type fakeBackend struct {
	t      *testing.T
	mu     sync.Mutex
	images map[string]Image
	layers map[digest.Digest][]fakeEntry
	bases  map[string]Image
	calls  []string
	runs   []RunRequest
	tags   map[string]string
	onRun  func(req RunRequest) ([]fakeEntry, error)
}

var _ Backend = (*fakeBackend)(nil)

func newFake(t *testing.T) *fakeBackend {
	fb := &fakeBackend{
		t:      t,
		images: map[string]Image{},
		layers: map[digest.Digest][]fakeEntry{},
		bases:  map[string]Image{},
		tags:   map[string]string{},
	}
	return fb
}

// addBase makes a base image ref with the given files in one layer.
func (f *fakeBackend) addBase(ref string, cfg dockerspec.DockerOCIImageConfig, files ...fakeEntry) Image {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.storeLayer(files)
	img := dockerspec.DockerOCIImage{Config: cfg}
	img.OS, img.Architecture = "linux", "amd64"
	img.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{d}}
	img.History = []ocispec.History{{CreatedBy: "/bin/sh -c #(nop) ADD file:base in / "}}
	im := f.store(img)
	f.bases[ref] = im
	return im
}

func (f *fakeBackend) storeLayer(entries []fakeEntry) digest.Digest {
	b, _ := json.Marshal(entries)
	d := digest.FromBytes(append(b, []byte(fmt.Sprint(len(f.layers)))...))
	f.layers[d] = entries
	return d
}

func (f *fakeBackend) store(cfg dockerspec.DockerOCIImage) Image {
	b, _ := json.Marshal(cfg)
	sum := sha256.Sum256(append(b, []byte(fmt.Sprint(len(f.images)))...))
	img := Image{ID: hex.EncodeToString(sum[:]), Config: cloneConfig(cfg)}
	f.images[img.ID] = img
	return img
}

func (f *fakeBackend) record(call string) {
	f.calls = append(f.calls, call)
}

func (f *fakeBackend) callCount(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (f *fakeBackend) Base(ctx context.Context, ref string, pull bool, out io.Writer) (Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Base " + ref)
	img, ok := f.bases[ref]
	if !ok {
		return Image{}, errdefs.NotFoundf("pull access denied for %s", ref)
	}
	return img, nil
}

func (f *fakeBackend) Lookup(ctx context.Context, id string) (Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Lookup " + id)
	img, ok := f.images[id]
	if !ok {
		return Image{}, errdefs.NotFoundf("no such image: %s", id)
	}
	return img, nil
}

func (f *fakeBackend) Run(ctx context.Context, req RunRequest) (Image, error) {
	f.mu.Lock()
	f.record("Run " + strings.Join(req.Cmd, " "))
	f.runs = append(f.runs, req)
	onRun := f.onRun
	f.mu.Unlock()
	var entries []fakeEntry
	if onRun != nil {
		var err error
		if entries, err = onRun(req); err != nil {
			return Image{}, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cfg := cloneConfig(req.Config)
	cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, f.storeLayer(entries))
	return f.store(cfg), nil
}

func (f *fakeBackend) Apply(ctx context.Context, parent Image, layer io.Reader, cfg dockerspec.DockerOCIImage) (Image, error) {
	var entries []fakeEntry
	tr := tar.NewReader(layer)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Image{}, err
		}
		body, _ := io.ReadAll(tr)
		entries = append(entries, fakeEntry{Name: hdr.Name, Type: hdr.Typeflag, Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid, Link: hdr.Linkname, Body: string(body)})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Apply")
	cfg = cloneConfig(cfg)
	cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, f.storeLayer(entries))
	return f.store(cfg), nil
}

func (f *fakeBackend) Commit(ctx context.Context, parent Image, cfg dockerspec.DockerOCIImage) (Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Commit")
	return f.store(cfg), nil
}

// Mount writes the image's layers out into a temp dir.
func (f *fakeBackend) Mount(ctx context.Context, id string) (string, func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Mount " + id)
	img, ok := f.images[id]
	if !ok {
		return "", nil, errdefs.NotFoundf("no such image: %s", id)
	}
	root := f.t.TempDir()
	for _, d := range img.Config.RootFS.DiffIDs {
		for _, e := range f.layers[d] {
			p := filepath.Join(root, e.Name)
			switch e.Type {
			case tar.TypeDir:
				if err := os.MkdirAll(p, 0o755); err != nil {
					return "", nil, err
				}
			case tar.TypeSymlink:
				_ = os.MkdirAll(filepath.Dir(p), 0o755)
				_ = os.Remove(p)
				if err := os.Symlink(e.Link, p); err != nil {
					return "", nil, err
				}
			default:
				_ = os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, []byte(e.Body), 0o644); err != nil {
					return "", nil, err
				}
			}
		}
	}
	return root, func() {}, nil
}

func (f *fakeBackend) Tag(ctx context.Context, id, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Tag " + ref)
	f.tags[ref] = id
	return nil
}

// entries lists the entries of image id's last layer, sorted by name.
func (f *fakeBackend) lastLayer(id string) []fakeEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	img := f.images[strings.TrimPrefix(id, "sha256:")]
	ids := img.Config.RootFS.DiffIDs
	if len(ids) == 0 {
		return nil
	}
	out := append([]fakeEntry(nil), f.layers[ids[len(ids)-1]]...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (f *fakeBackend) image(id string) Image {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.images[strings.TrimPrefix(id, "sha256:")]
}

// tf is a file in a test context.
type tf struct {
	name string
	body string
	mode int64
	typ  byte
	link string
}

func tarOf(t testing.TB, files ...tf) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		typ := f.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := f.mode
		if mode == 0 {
			mode = 0o644
			if typ == tar.TypeDir {
				mode = 0o755
			}
		}
		hdr := &tar.Header{Name: f.name, Typeflag: typ, Mode: mode, Linkname: f.link}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(f.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(f.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// harness builds against a fake backend with one builder dir.
type harness struct {
	t  *testing.T
	fb *fakeBackend
	b  *Builder
}

func newHarness(t *testing.T) *harness {
	fb := newFake(t)
	fb.addBase("busybox", dockerspec.DockerOCIImageConfig{
		ImageConfig: ocispec.ImageConfig{Env: []string{"PATH=/usr/bin:/bin"}, Cmd: []string{"sh"}},
	},
		fakeEntry{Name: "etc/", Type: tar.TypeDir, Mode: 0o755},
		fakeEntry{Name: "etc/passwd", Type: tar.TypeReg, Body: "root:x:0:0:root:/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n"},
		fakeEntry{Name: "etc/group", Type: tar.TypeReg, Body: "root:x:0:\nstaff:x:50:\n"},
		fakeEntry{Name: "usr/", Type: tar.TypeDir, Mode: 0o755},
		fakeEntry{Name: "usr/bin/", Type: tar.TypeDir, Mode: 0o755},
		fakeEntry{Name: "bin", Type: tar.TypeSymlink, Link: "usr/bin"},
	)
	return &harness{t: t, fb: fb, b: New(fb, t.TempDir())}
}

// build builds a context of files plus a Dockerfile.
func (h *harness) build(dockerfile string, opts Options, files ...tf) (string, string, error) {
	h.t.Helper()
	all := append([]tf{{name: "Dockerfile", body: dockerfile}}, files...)
	return h.buildTar(tarOf(h.t, all...), opts)
}

func (h *harness) buildTar(ctxTar []byte, opts Options) (string, string, error) {
	h.t.Helper()
	var out bytes.Buffer
	id, err := h.b.Build(context.Background(), bytes.NewReader(ctxTar), opts, &out)
	return id, out.String(), err
}

func (h *harness) mustBuild(dockerfile string, opts Options, files ...tf) (string, string) {
	h.t.Helper()
	id, out, err := h.build(dockerfile, opts, files...)
	if err != nil {
		h.t.Fatalf("build: %v\noutput:\n%s", err, out)
	}
	return id, out
}

// Reuse makes the fake a LayerReuser.
func (f *fakeBackend) Reuse(ctx context.Context, from Image, n int, cfg dockerspec.DockerOCIImage) (Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Reuse")
	cfg = cloneConfig(cfg)
	cfg.RootFS.DiffIDs = append([]digest.Digest(nil), from.Config.RootFS.DiffIDs[:n]...)
	return f.store(cfg), nil
}

// plainBackend hides the fake's optional abilities.
type plainBackend struct{ Backend }

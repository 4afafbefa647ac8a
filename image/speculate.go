package image

import (
	"context"
	"io"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"go.podman.io/storage/pkg/archive"
)

// maxSpeculative bounds how many files of one archive may start to unpack
// before its manifest says which are layers.
const maxSpeculative = 64

// speculation unpacks the files of a docker load's archive that start like
// a layer (a tar, or a compressed stream) into staging directories as soon
// as each is spooled, while the rest of the archive still arrives: docker
// save writes manifest.json, which says which files are layers, at the
// archive's end. The load takes what it needs (take), and whatever nobody
// took is removed when the spool closes (stop). A file taken is still
// checked against its diff ID when it is committed.
type speculation struct {
	stager layerStager
	// known says whether the store has a layer whose tar, or compressed
	// blob, has digest d: a blob docker save names by it is not unpacked.
	known  func(d digest.Digest) bool
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	by    map[string]*fetching // by the file's cleaned name
	stale []*fetching          // a name the archive repeated: its earlier file's
	n     int
}

// newSpeculation returns nil where the driver cannot stage.
func newSpeculation(ctx context.Context, s layerStager, known func(digest.Digest) bool) *speculation {
	if !s.canStage() {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	return &speculation{stager: s, known: known, ctx: ctx, cancel: cancel, sem: make(chan struct{}, maxDownloads), by: map[string]*fetching{}}
}

// offer starts unpacking name, whose bytes are all in sr now, if it looks
// like a layer the store does not have already.
func (s *speculation) offer(name string, sr *io.SectionReader) {
	if s == nil || !looksLikeLayer(sr) {
		return
	}
	if hex, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
		if d := digest.NewDigestFromEncoded(digest.SHA256, hex); d.Validate() == nil && s.known(d) {
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n >= maxSpeculative {
		return
	}
	s.n++
	if old := s.by[name]; old != nil {
		s.stale = append(s.stale, old)
	}
	f := &fetching{done: make(chan struct{})}
	s.by[name] = f
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f.stageInTurn(s.ctx, s.sem, func() (*staged, error) {
			return s.stager.stageLayer(io.NewSectionReader(sr, 0, sr.Size()), "")
		})
	}()
}

// take waits for name's unpacking and hands it over; false when name was
// not unpacked or failed (the caller unpacks it itself then).
func (s *speculation) take(name string) (*staged, bool) {
	if s == nil {
		return nil, false
	}
	s.mu.Lock()
	f := s.by[name]
	delete(s.by, name)
	s.mu.Unlock()
	if f == nil {
		return nil, false
	}
	<-f.done
	if f.err != nil {
		return nil, false
	}
	return f.st, true
}

// stop ends the unpacking not yet begun, waits for the rest and removes
// what nobody took.
func (s *speculation) stop() {
	if s == nil {
		return
	}
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range append(s.stale, mapValues(s.by)...) {
		s.stager.discard(f.st)
		f.st = nil
	}
	s.by, s.stale = map[string]*fetching{}, nil
}

func mapValues(m map[string]*fetching) []*fetching {
	out := make([]*fetching, 0, len(m))
	for _, f := range m {
		out = append(out, f)
	}
	return out
}

// looksLikeLayer says whether sr starts as a compressed stream or a tar
// (a ustar header) does.
func looksLikeLayer(sr *io.SectionReader) bool {
	head := make([]byte, 512)
	n, _ := sr.ReadAt(head, 0)
	head = head[:n]
	if n >= 10 && archive.DetectCompression(head) != archive.Uncompressed {
		return true
	}
	return n >= 262 && string(head[257:262]) == "ustar"
}

package image

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/pgzip"
	digest "github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/archive/tar"
	"github.com/vbatts/tar-split/tar/asm"
	tsstorage "github.com/vbatts/tar-split/tar/storage"
	cstorage "go.podman.io/storage"
	drivers "go.podman.io/storage/drivers"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/chrootarchive"
	"go.podman.io/storage/pkg/ioutils"
	"go.podman.io/storage/pkg/stringid"
	"go.podman.io/storage/pkg/tarlog"
	"golang.org/x/sys/unix"
)

// A layer is extracted in two steps, so that the layers of one image
// extract at once, as they download, instead of one after the other
// (the store's PutLayer wants a layer's parent in the store before it
// starts): stageLayer unpacks a layer's tar into a staging directory of
// the store's driver, beside the store and without its lock;
// commitStaged then makes it a layer on its parent, a rename. A staged
// layer that is not committed is removed (after a crash, by lodged's next
// start: storage.Open); the store itself never holds a half-made layer.
// A driver that cannot stage (vfs) gets its layers through PutLayer, one
// at a time (canStage).

// layerStager is the image service's side of staging, which pulls and
// loads use.
type layerStager interface {
	canStage() bool
	stageLayer(r io.Reader, verified digest.Digest) (*staged, error)
	commitStaged(parent, chain, diffID digest.Digest, st *staged) (existed bool, err error)
	discard(st *staged)
	putLayer(parentID string, r io.Reader) (*cstorage.Layer, error)
}

// staged is a layer unpacked beside the store.
type staged struct {
	out *drivers.DriverWithDifferOutput
}

// stageLayer unpacks the layer tar read from r (gzip, zstd or plain)
// into a staging directory, hashing it. verified is the digest r was
// checked against as it was read to its end (a registry blob), or "".
// It reads r to its end, so that such a check runs.
func (s *Service) stageLayer(r io.Reader, verified digest.Digest) (*staged, error) {
	out, err := s.store.PrepareStagedLayer(&drivers.ApplyDiffWithDifferOpts{}, &tarDiffer{src: r, verified: verified})
	if err != nil {
		if out != nil && out.Target != "" {
			s.dropStaged(out)
		}
		return nil, err
	}
	return &staged{out: out}, nil
}

// dropStaged removes a staged layer that will not be committed.
func (s *Service) dropStaged(out *drivers.DriverWithDifferOutput) {
	if err := s.store.CleanupStagedLayer(out); err != nil {
		s.cfg.Log.Warn("image: staged layer left behind", "dir", out.Target, "err", err)
	}
}

// discard removes st if it was not committed; nil does nothing.
func (s *Service) discard(st *staged) {
	if st != nil && st.out != nil {
		s.dropStaged(st.out)
		st.out = nil
	}
}

// commitStaged makes the staged layer st the layer chain on parent, once
// its content matches diffID. existed says the store had that layer
// already (another pull made it meanwhile): st is dropped then.
func (s *Service) commitStaged(parent, chain, diffID digest.Digest, st *staged) (existed bool, err error) {
	defer s.discard(st)
	if got := st.out.UncompressedDigest; got != diffID {
		return false, fmt.Errorf("layer content %s does not match the image's diff ID %s", got, diffID)
	}
	id := chain.Encoded()
	parentID := ""
	if parent != "" {
		parentID = parent.Encoded()
	}
	// The store would unpack a staged layer over one it has (its API
	// allows it for a layer made empty first), whatever that one holds:
	// it is asked first, under the lock that orders this service's
	// commits, and a layer it has is kept, as PutLayer keeps it.
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if _, err := s.store.Layer(id); err == nil {
		return true, nil
	}
	out := st.out
	st.out = nil // applyStaged owns it now
	_, err = s.applyStaged(id, parentID, out)
	if errors.Is(err, cstorage.ErrDuplicateID) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("storing layer %s: %w", diffID.Encoded()[:12], err)
	}
	return false, nil
}

// applyStaged makes out the layer id on parentID ("" for none), or
// removes it.
func (s *Service) applyStaged(id, parentID string, out *drivers.DriverWithDifferOutput) (*cstorage.Layer, error) {
	l, err := s.store.ApplyStagedLayer(cstorage.ApplyStagedLayerOptions{ID: id, ParentLayer: parentID, DiffOutput: out})
	if err != nil {
		s.dropStaged(out)
		return nil, err
	}
	// The store moves the layer out of its staging directory but leaves
	// the directory, empty, until it shuts down: one a layer for as long
	// as lodged runs.
	if err := os.Remove(filepath.Dir(out.Target)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.cfg.Log.Warn("image: staging directory left behind", "dir", filepath.Dir(out.Target), "err", err)
	}
	return l, nil
}

// putLayer stores the layer tar read from r on parentID ("" for none)
// under a new ID, as the store's PutLayer does, but unpacked on a
// confined thread rather than in a re-executed lodged where the driver
// can stage (a commit's or a build step's layer, an import).
func (s *Service) putLayer(parentID string, r io.Reader) (*cstorage.Layer, error) {
	if !s.canStage() {
		l, _, err := s.store.PutLayer("", parentID, nil, "", false, nil, r)
		return l, err
	}
	st, err := s.stageLayer(r, "")
	if err != nil {
		return nil, err
	}
	out := st.out
	st.out = nil
	return s.applyStaged(stringid.GenerateRandomID(), parentID, out)
}

// tarDiffer is the store's differ for a plain layer tar: it unpacks it
// into the staging directory as the store's own PutLayer does (with the
// same unpacker, chrooted, so that a hostile tar cannot reach outside),
// and records what PutLayer records: the tar's digest and size, the
// owners it names, and its tar-split, from which `docker save` and push
// rebuild the exact tar.
type tarDiffer struct {
	src      io.Reader
	verified digest.Digest
}

func (d *tarDiffer) Close() error { return nil }

func (d *tarDiffer) ApplyDiff(dest string, opts *archive.TarOptions, dopts *drivers.DifferOptions) (out drivers.DriverWithDifferOutput, err error) {
	dir := filepath.Dir(dest)
	if dopts != nil && dopts.StagingDirectory != "" {
		dir = dopts.StagingDirectory
	}
	ts, err := os.CreateTemp(dir, "tar-split-")
	if err != nil {
		return out, err
	}
	// The open file is all the store reads; the name need not stay.
	_ = os.Remove(ts.Name())
	defer func() {
		if err != nil {
			ts.Close()
		}
	}()
	if err := d.unpack(dest, opts, ts, &out); err != nil {
		// A corrupt download often breaks the gzip or tar stream before
		// its digest is checked at its end: read on, so that the message
		// says what is wrong rather than where it broke.
		if _, derr := io.Copy(io.Discard, io.LimitReader(d.src, maxDrain)); derr != nil {
			return out, fmt.Errorf("%w (unpacking it failed: %v)", derr, err)
		}
		return out, err
	}
	// The rest of the blob (a compressed stream's trailer, padding) is
	// read so that a digest check at its end runs.
	if _, err := io.Copy(io.Discard, d.src); err != nil {
		return out, err
	}
	out.CompressedDigest = d.verified
	out.TarSplit = ts
	return out, nil
}

// unpack streams the tar through the digest, the owner log and the
// tar-split recorder into the chrooted unpacker.
func (d *tarDiffer) unpack(dest string, opts *archive.TarOptions, ts *os.File, out *drivers.DriverWithDifferOutput) (err error) {
	un, err := decompress(d.src)
	if err != nil {
		return err
	}
	defer un.Close()
	uids, gids := map[uint32]struct{}{}, map[uint32]struct{}{}
	var rootMode *os.FileMode
	owners, err := tarlog.NewLogger(func(h *tar.Header) {
		if path.Clean("/"+h.Name) == "/" {
			m := h.FileInfo().Mode()
			rootMode = &m
		}
		if !strings.HasPrefix(path.Base(h.Name), archive.WhiteoutPrefix) {
			uids[uint32(h.Uid)] = struct{}{}
			gids[uint32(h.Gid)] = struct{}{}
		}
	})
	if err != nil {
		return err
	}
	sum := digest.Canonical.Digester()
	n := ioutils.NewWriteCounter(sum.Hash())
	bw := bufio.NewWriterSize(ts, 32<<10)
	payload, done, err := asm.NewInputTarStreamWithDone(io.TeeReader(un, io.MultiWriter(n, owners)), tsstorage.NewJSONPacker(bw), tsstorage.NewDiscardFilePutter())
	if err != nil {
		_ = owners.Close() // the stream's error is the one to report
		return err
	}
	cr := newChunkReader(payload)
	err = unpackConfined(cr, dest, opts)
	if err == nil {
		// The tar's end (its zero blocks) belongs to the tar-split too.
		_, err = io.Copy(io.Discard, cr)
	}
	payload.Close()
	cr.stopReading()
	if derr := <-done; err == nil {
		err = derr
	}
	if cerr := owners.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	out.UncompressedDigest = sum.Digest()
	out.Size = n.Count
	out.UIDs, out.GIDs = sortedIDs(uids), sortedIDs(gids)
	// A tar that sets its root's mode keeps it; otherwise the store
	// gives the layer its parent's, as PutLayer does.
	out.RootDirMode = rootMode
	return nil
}

// decompress is the layer tar in the blob read from r, as the store's
// archive.DecompressStream finds it, but a gzip blob's reader reads ahead
// 1 MiB rather than 4 (16 blocks of 250 KB, allocated and zeroed for each
// layer: ~10 ms of CPU in a pull of six). The layers of a pull unpack at
// once, so the deeper read-ahead bought nothing.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 32<<10)
	magic, err := br.Peek(10)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if archive.DetectCompression(magic) != archive.Gzip {
		return archive.DecompressStream(br)
	}
	return pgzip.NewReaderN(br, 256<<10, 4)
}

func sortedIDs(m map[uint32]struct{}) []uint32 {
	ids := make([]uint32, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// unpackConfined unpacks the tar read from r into dir with the store's
// unpacker, on a thread whose root is dir: every path the tar names, and
// every symlink it makes, resolves inside dir. PutLayer gets the same
// confinement by re-executing lodged in a chroot for each layer, which
// costs a process start (~45 ms of CPU for lodged's size, more than
// unpacking a 16 MiB layer) and a copy of the tar through a pipe.
//
// The threads are a few unpackers that live as long as lodged: each is
// locked to its goroutine for good and has its own root and working
// directory (unshared with CLONE_FS), so it runs nothing else and its
// chroot touches no other thread. They never end, on purpose: a thread's
// end sends the parent-death signal of every child it ever started (the
// BuildKit helper, a network namespace's holder), and a thread a
// goroutine leaves locked is ended. The runtime starts new threads from
// its template thread, never from a locked one. The unpacker does no
// name lookups (which could load libraries from the tar) and starts no
// goroutines. Where no unpacker can confine itself (the main thread, an
// unshare refused), the store's re-executed unpacker does it.
func unpackConfined(r io.Reader, dir string, opts *archive.TarOptions) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	unpackers.once.Do(func() {
		unpackers.jobs = make(chan unpackJob)
		for range maxUnpackers {
			go unpacker(unpackers.jobs)
		}
	})
	j := unpackJob{r: r, dir: d, opts: opts, errc: make(chan error, 1)}
	unpackers.jobs <- j
	err = <-j.errc
	if errors.Is(err, errNoThreadRoot) {
		return chrootarchive.UntarUncompressed(r, dir, opts)
	}
	return err
}

// maxUnpackers is how many layers unpack at once (a pull's downloads,
// and a build or a commit beside them).
const maxUnpackers = maxDownloads + 1

var unpackers struct {
	once sync.Once
	jobs chan unpackJob
}

type unpackJob struct {
	r    io.Reader
	dir  *os.File
	opts *archive.TarOptions
	errc chan error
}

// errNoThreadRoot is an unpacker that cannot have a root of its own.
var errNoThreadRoot = errors.New("no thread of its own to chroot")

func unpacker(jobs <-chan unpackJob) {
	runtime.LockOSThread() // for good: see unpackConfined
	var cannot error
	if unix.Gettid() == unix.Getpid() {
		// The main thread (a binary whose main goroutine does not hold
		// it): its root is the one /proc/PID/root shows.
		cannot = errNoThreadRoot
	} else if err := unix.Unshare(unix.CLONE_FS); err != nil {
		cannot = fmt.Errorf("%w: unshare: %v", errNoThreadRoot, err)
	}
	for j := range jobs {
		if cannot != nil {
			j.errc <- cannot
			continue
		}
		j.errc <- j.run()
	}
}

// run chroots the unpacker's thread to the job's directory (from wherever
// the last job left it: the directory is an open descriptor) and unpacks.
func (j unpackJob) run() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("unpacking the layer: %v", p)
		}
	}()
	if err := unix.Fchdir(int(j.dir.Fd())); err != nil {
		return fmt.Errorf("unpacker: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("unpacker: chroot to %s: %w", j.dir.Name(), err)
	}
	return archive.Unpack(j.r, "/", j.opts)
}

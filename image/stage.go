package image

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/archive/tar"
	"github.com/vbatts/tar-split/tar/asm"
	tsstorage "github.com/vbatts/tar-split/tar/storage"
	cstorage "go.podman.io/storage"
	drivers "go.podman.io/storage/drivers"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/chrootarchive"
	"go.podman.io/storage/pkg/ioutils"
	"go.podman.io/storage/pkg/tarlog"
)

// A layer is extracted in two steps, so that the layers of one image
// extract at once, as they download, instead of one after the other
// (the store's PutLayer wants a layer's parent in the store before it
// starts): stageLayer unpacks a layer's tar into a staging directory of
// the store's driver, beside the store and without its lock;
// commitStaged then makes it a layer on its parent, a rename. A staged
// layer that is not committed is removed (or, after a crash, by the
// driver's cleanup at the store's next shutdown); the store itself never
// holds a half-made layer.

// errNoStaging is a store whose driver cannot stage (vfs): its layers
// are put one at a time.
var errNoStaging = errors.New("the storage driver cannot stage layers")

// layerStager is the image service's side of staging, which pulls and
// loads use.
type layerStager interface {
	canStage() bool
	stageLayer(r io.Reader, verified digest.Digest) (*staged, error)
	commitStaged(parent, chain, diffID digest.Digest, st *staged) (existed bool, err error)
	discard(st *staged)
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
		if errors.Is(err, cstorage.ErrNotSupported) || errors.Is(err, drivers.ErrNotSupported) {
			return nil, errNoStaging
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
	// allows it for a layer made empty first): it is asked first, under
	// the lock that orders this service's commits.
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if l, err := s.store.Layer(id); err == nil && l.UncompressedDigest == diffID {
		return true, nil
	}
	out := st.out
	st.out = nil // the store owns it now, failed or not
	_, err = s.store.ApplyStagedLayer(cstorage.ApplyStagedLayerOptions{ID: id, ParentLayer: parentID, DiffOutput: out})
	if errors.Is(err, cstorage.ErrDuplicateID) {
		s.dropStaged(out)
		return true, nil
	}
	if err != nil {
		s.dropStaged(out)
		return false, fmt.Errorf("storing layer %s: %w", diffID.Encoded()[:12], err)
	}
	// The store moves the layer out of its staging directory but leaves
	// the directory, empty, until it shuts down: one a layer for as long
	// as lodged runs.
	if err := os.Remove(filepath.Dir(out.Target)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.cfg.Log.Warn("image: staging directory left behind", "dir", filepath.Dir(out.Target), "err", err)
	}
	return false, nil
}

// tarDiffer is the store's differ for a plain layer tar: it unpacks it
// into the staging directory as the store's own PutLayer does (through
// the same chrooted unpacker, so a hostile tar cannot reach outside),
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
	un, err := archive.DecompressStream(d.src)
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
	err = chrootarchive.UntarUncompressed(payload, dest, opts)
	if err == nil {
		// The tar's end (its zero blocks) belongs to the tar-split too.
		_, err = io.Copy(io.Discard, payload)
	}
	payload.Close()
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

func sortedIDs(m map[uint32]struct{}) []uint32 {
	ids := make([]uint32, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

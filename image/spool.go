package image

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"

	digest "github.com/opencontainers/go-digest"

	"github.com/lodge-containers/lodge/errdefs"
)

// spooledTar is a tar file on disk with an index of its regular files, so
// that blobs can be read in any order without extracting them.
type spooledTar struct {
	f     *os.File
	files map[string]*io.SectionReader
	links map[string]string
	spec  *speculation // its layers unpacking while it spooled, or nil
}

// spool copies r to a temporary file and indexes it as it copies. Docker's
// archive format puts manifest.json anywhere (docker save: at the end), so
// the stream cannot be loaded as it is read; the files that start like a
// layer begin to unpack as soon as they are spooled (speculation).
func (a *Archives) spool(ctx context.Context, r io.Reader) (*spooledTar, error) {
	f, err := os.CreateTemp(a.tmpDir, "load-*.tar")
	if err != nil {
		return nil, err
	}
	removeTemp(a.log, f.Name()) // the open file stays readable
	st := &spooledTar{f: f, files: map[string]*io.SectionReader{}, links: map[string]string{}, spec: newSpeculation(ctx, a.images, a.hasLayerBlob)}
	tee := &teeCounter{r: r, w: f}
	tr := tar.NewReader(tee)
	var last string // the regular file whose bytes the next header follows
	// A file's bytes are read here in large pieces: skipped by the tar
	// reader, they would go through in 8 KiB reads and writes.
	buf := make([]byte, 1<<20)
	for {
		h, err := tr.Next()
		if last != "" {
			st.spec.offer(last, st.files[last])
			last = ""
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			st.Close()
			if tee.err != nil {
				return nil, fmt.Errorf("reading the archive: %w", tee.err)
			}
			return nil, errdefs.InvalidArgumentf("the archive is not a valid tar: %v", err)
		}
		name := path.Clean(h.Name)
		switch h.Typeflag {
		case tar.TypeReg:
			st.files[name] = io.NewSectionReader(f, tee.n, h.Size)
			last = name
			if err := drain(tr, buf); err != nil {
				st.Close()
				if tee.err != nil {
					return nil, fmt.Errorf("reading the archive: %w", tee.err)
				}
				return nil, errdefs.InvalidArgumentf("the archive is not a valid tar: %v", err)
			}
		case tar.TypeSymlink:
			st.links[name] = path.Join(path.Dir(name), h.Linkname)
		case tar.TypeLink:
			st.links[name] = path.Clean(h.Linkname)
		}
	}
	// What follows the tar's end is read (and kept) as before.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		st.Close()
		return nil, fmt.Errorf("reading the archive: %w", err)
	}
	return st, nil
}

// drain reads r to its end through buf.
func drain(r io.Reader, buf []byte) error {
	for {
		if _, err := r.Read(buf); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// hasLayerBlob says whether the store has a layer whose tar, or whose
// compressed blob, has digest d.
func (a *Archives) hasLayerBlob(d digest.Digest) bool {
	if ls, err := a.store.LayersByUncompressedDigest(d); err == nil && len(ls) > 0 {
		return true
	}
	ls, err := a.store.LayersByCompressedDigest(d)
	return err == nil && len(ls) > 0
}

// teeCounter reads r, writes what it read to w and counts it; err is the
// first read or write failure (a tar reader hides its cause).
type teeCounter struct {
	r   io.Reader
	w   io.Writer
	n   int64
	err error
}

func (t *teeCounter) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		if _, werr := t.w.Write(p[:n]); werr != nil {
			t.err = werr
			return 0, werr
		}
		t.n += int64(n)
	}
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

// Close drops the spool (an unlinked temporary file, only read from here)
// and the layers unpacked from it that nobody took.
func (t *spooledTar) Close() {
	t.spec.stop()
	_ = t.f.Close()
}

// resolve is the regular file name stands for, following links.
func (t *spooledTar) resolve(name string) (string, error) {
	name = path.Clean(name)
	for i := 0; i < 16; i++ {
		if _, ok := t.files[name]; ok {
			return name, nil
		}
		target, ok := t.links[name]
		if !ok {
			break
		}
		name = target
	}
	return "", errdefs.InvalidArgumentf("the archive has no file %q", name)
}

// open returns a fresh reader of the file name, following links.
func (t *spooledTar) open(name string) (*io.SectionReader, error) {
	name, err := t.resolve(name)
	if err != nil {
		return nil, err
	}
	sr := t.files[name]
	return io.NewSectionReader(sr, 0, sr.Size()), nil
}

func (t *spooledTar) readAll(name string) ([]byte, error) {
	r, err := t.open(name)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

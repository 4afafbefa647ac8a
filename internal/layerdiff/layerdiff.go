// Package layerdiff opens go.podman.io/storage's layer diffs so that
// closing one early is safe. It is a leaf: storage (containers' layers) and
// image (push, save, the local registry view) both open diffs through it.
package layerdiff

import (
	"errors"
	"io"
	"os"
	"sync"

	cstorage "go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
)

// Open opens layer id of st as an uncompressed tar, wrapped so that
// closing it early is safe. The caller closes it; until then the store
// keeps its layers locked.
//
// go.podman.io/storage rebuilds a stored layer's tar from its tar-split in
// a goroutine of its own (tar-split's asm.NewOutputTarStream, a
// container's layer through the driver's Diff likewise) and its Close
// closes the gzip'd tar-split under that goroutine. Closed before the end,
// the goroutine's JSON decoder then reads (0, nil) from the closed pgzip
// reader forever and spins a core with the store's lock held. So Close
// reads what is left first, which ends the goroutine, and then closes; a
// Read in progress on another goroutine (a gzip or HTTP copier) is waited
// for, and later Reads fail.
func Open(st cstorage.Store, id string) (io.ReadCloser, error) {
	plain := archive.Uncompressed
	rc, err := st.Diff("", id, &cstorage.DiffOptions{Compression: &plain})
	if err != nil {
		return nil, err
	}
	return &diffStream{rc: rc}, nil
}

type diffStream struct {
	mu     sync.Mutex
	rc     io.ReadCloser
	closed bool
}

func (d *diffStream) Read(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, os.ErrClosed
	}
	return d.rc.Read(p)
}

func (d *diffStream) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	// The rest is read so that the store's writer ends; if it failed on
	// the way, that is this stream's error too.
	_, err := io.Copy(io.Discard, d.rc)
	return errors.Join(err, d.rc.Close())
}

// Lazy is a stream opened by its first Read: a HEAD request, or a
// client gone before the body, never opens (and so never locks) anything.
// Close closes what was opened. It is not safe for concurrent use.
type Lazy struct {
	Open func() (io.ReadCloser, error)
	rc   io.ReadCloser
	err  error
}

func (l *Lazy) Read(p []byte) (int, error) {
	if l.rc == nil && l.err == nil {
		l.rc, l.err = l.Open()
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.rc.Read(p)
}

func (l *Lazy) Close() error {
	if l.rc == nil {
		l.err = os.ErrClosed
		return nil
	}
	return l.rc.Close()
}

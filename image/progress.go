package image

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// ProgressSink is where a pull, push, load or import says how it goes.
// The API answers it as Docker's JSON message stream (api's encoder);
// a build prints it as text lines (TextProgress). A sink must be safe for
// concurrent use: layers download in parallel.
//
// It is an alias of an unnamed interface so that a package using the
// image service (api's backend interfaces) can declare the very same type
// without importing image.
type ProgressSink = interface {
	// Status is one line for the item id ("" for the whole operation).
	Status(id, status string)
	// Bytes is how far a transfer of total bytes (0: unknown) has come.
	Bytes(id, status string, current, total int64)
	// Stream is free text, as `docker load` prints it.
	Stream(text string)
	// Aux is out-of-band data (push's digest).
	Aux(v any)
}

// discard is the sink of a caller that wants no progress.
type discard struct{}

func (discard) Status(string, string)              {}
func (discard) Bytes(string, string, int64, int64) {}
func (discard) Stream(string)                      {}
func (discard) Aux(any)                            {}

// orDiscard lets callers pass a nil sink.
func orDiscard(p ProgressSink) ProgressSink {
	if p == nil {
		return discard{}
	}
	return p
}

// TextProgress prints each item's state changes as a build shows a pull:
// "id: status" lines, no byte counts, no free text or aux data.
func TextProgress(w io.Writer) ProgressSink { return &textProgress{w: w} }

type textProgress struct {
	mu sync.Mutex
	w  io.Writer
}

func (t *textProgress) Status(id, status string) {
	if id != "" {
		status = id + ": " + status
	}
	if status == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// A build's output is the client's stream: when it is gone the
	// build fails on its own writes, so a lost status line is no error.
	_, _ = fmt.Fprintln(t.w, status)
}

func (t *textProgress) Bytes(string, string, int64, int64) {}
func (t *textProgress) Stream(string)                      {}
func (t *textProgress) Aux(any)                            {}

// bar reports bytes read through it as "status" for id, at most ten times
// a second.
type bar struct {
	r       io.Reader
	p       ProgressSink
	id      string
	status  string
	total   int64
	current int64
	last    time.Time
}

func (b *bar) Read(buf []byte) (int, error) {
	n, err := b.r.Read(buf)
	b.current += int64(n)
	if now := time.Now(); now.Sub(b.last) > 100*time.Millisecond || (err == io.EOF && b.current > 0) {
		b.last = now
		b.p.Bytes(b.id, b.status, b.current, b.total)
	}
	return n, err
}

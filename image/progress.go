package image

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
)

// Progress writes Docker's JSON message stream, which the docker CLI
// draws as progress bars. It is safe for concurrent use; a nil *Progress
// writes nothing.
type Progress struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewProgress writes messages to w (flushed by the caller's writer).
func NewProgress(w io.Writer) *Progress { return &Progress{enc: json.NewEncoder(w)} }

func (p *Progress) send(m jsonstream.Message) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.enc.Encode(m)
}

// Status is one line, for the item id ("" for the whole operation).
func (p *Progress) Status(id, status string) { p.send(jsonstream.Message{ID: id, Status: status}) }

// Stream is free text, as `docker load` prints it.
func (p *Progress) Stream(text string) { p.send(jsonstream.Message{Stream: text}) }

// Aux sends out-of-band data (push's digest).
func (p *Progress) Aux(v any) {
	b, _ := json.Marshal(v)
	raw := json.RawMessage(b)
	p.send(jsonstream.Message{Aux: &raw})
}

// Error ends the stream with an error: errorDetail for the docker CLI and
// the Go client, and the old top-level "error" string beside it, which
// docker-py and compose v1 read (Docker sends both).
func (p *Progress) Error(err error) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.enc.Encode(struct {
		Detail jsonstream.Error `json:"errorDetail"`
		Error  string           `json:"error"`
	}{jsonstream.Error{Message: err.Error()}, err.Error()})
}

// bar reports bytes read through it as "status" for id, at most ten times
// a second.
type bar struct {
	r       io.Reader
	p       *Progress
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
		b.p.send(jsonstream.Message{ID: b.id, Status: b.status, Progress: &jsonstream.Progress{Current: b.current, Total: b.total}})
	}
	return n, err
}

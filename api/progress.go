package api

import (
	"encoding/json"
	"io"
	"sync"

	"github.com/moby/moby/api/types/jsonstream"
)

// ProgressSink is what the image backend reports a pull, push, load or
// import on; it is the image service's own type (an alias of the same
// unnamed interface), declared here so that api need not import image.
type ProgressSink = interface {
	Status(id, status string)
	Bytes(id, status string, current, total int64)
	Stream(text string)
	Aux(v any)
}

// jsonProgress writes Docker's JSON message stream, which the docker CLI
// draws as progress bars. It is safe for concurrent use.
type jsonProgress struct {
	mu  sync.Mutex
	enc *json.Encoder
	err error // the first write that failed: the client is gone
}

var _ ProgressSink = (*jsonProgress)(nil)

// newJSONProgress writes messages to w (flushed by the caller's writer).
func newJSONProgress(w io.Writer) *jsonProgress { return &jsonProgress{enc: json.NewEncoder(w)} }

func (p *jsonProgress) send(m any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// A client that went away stops reading; the operation goes on (a
	// pull completes, as in Docker) and its later messages go nowhere.
	if p.err == nil {
		p.err = p.enc.Encode(m)
	}
}

// Status is one line, for the item id ("" for the whole operation).
func (p *jsonProgress) Status(id, status string) {
	p.send(jsonstream.Message{ID: id, Status: status})
}

// Bytes is a progress bar's state.
func (p *jsonProgress) Bytes(id, status string, current, total int64) {
	p.send(jsonstream.Message{ID: id, Status: status, Progress: &jsonstream.Progress{Current: current, Total: total}})
}

// Stream is free text, as `docker load` prints it.
func (p *jsonProgress) Stream(text string) { p.send(jsonstream.Message{Stream: text}) }

// Aux sends out-of-band data (push's digest).
func (p *jsonProgress) Aux(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		p.Error(err)
		return
	}
	raw := json.RawMessage(b)
	p.send(jsonstream.Message{Aux: &raw})
}

// Error ends the stream with an error: errorDetail for the docker CLI and
// the Go client, and the old top-level "error" string beside it, which
// docker-py and compose v1 read (Docker sends both).
func (p *jsonProgress) Error(err error) {
	p.send(struct {
		Detail jsonstream.Error `json:"errorDetail"`
		Error  string           `json:"error"`
	}{jsonstream.Error{Message: err.Error()}, err.Error()})
}

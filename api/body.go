package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/lodge-containers/lodge/errdefs"
)

// bodyStallTimeout is how long lodged waits for the next byte of a request
// body. Build contexts, loads, imports and archive uploads are legitimately
// large, so they get no size limit and no overall deadline; a client that
// stops sending in the middle of one is given up after this long instead of
// holding a connection, a goroutine and whatever the handler opened forever.
const bodyStallTimeout = 2 * time.Minute

// stallBody is a request body whose every Read must make progress within
// stall. It arms the connection's read deadline before each Read and lifts
// it when the body ends, fails or is closed early, so the deadline never
// outlives the body into a long response or a hijacked stream.
type stallBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	stall time.Duration
	// notAfter, when set, caps the deadline: the whole body must have
	// arrived by then (JSON bodies, which are small).
	notAfter time.Time
	ended    bool
}

// guardBody replaces r.Body with a stallBody. Requests without a body keep
// http.NoBody.
func guardBody(w http.ResponseWriter, r *http.Request, stall time.Duration) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	r.Body = &stallBody{ReadCloser: r.Body, rc: http.NewResponseController(w), stall: stall}
}

// bodyDeadline makes r's body due in full by t.
func bodyDeadline(r *http.Request, t time.Time) {
	if b, ok := r.Body.(*stallBody); ok {
		b.notAfter = t
	}
}

func (b *stallBody) Read(p []byte) (int, error) {
	if b.ended {
		return b.ReadCloser.Read(p)
	}
	d := time.Now().Add(b.stall)
	if !b.notAfter.IsZero() && b.notAfter.Before(d) {
		d = b.notAfter
	}
	armed := b.rc.SetReadDeadline(d) == nil
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.ended = true
		if armed {
			_ = b.rc.SetReadDeadline(time.Time{}) // the body is done: a deadline left has nothing to cut
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = errdefs.InvalidArgumentf("request body: the client sent nothing for %s", b.stall)
		}
	}
	return n, err
}

// Close lifts the deadline too: a handler may stop reading a body early.
func (b *stallBody) Close() error {
	if !b.ended {
		b.ended = true
		_ = b.rc.SetReadDeadline(time.Time{}) // as above
	}
	return b.ReadCloser.Close()
}

// stallWriter is a streamed artifact (an export, a save, a copy out of a
// container) that the client must keep reading: a Write the client leaves
// blocked for stall fails, the stream ends and what it held (a mounted
// container, a spooled layer) is let go. Streams that are quiet by nature
// (events, logs -f) do not use it: only a Write that cannot complete counts.
type stallWriter struct {
	w     io.Writer
	rc    *http.ResponseController
	stall time.Duration
}

// stallWrites wraps out, a writer onto w's body, in a stallWriter.
func (s *Server) stallWrites(w http.ResponseWriter, out io.Writer) io.Writer {
	return stallWriter{w: out, rc: http.NewResponseController(w), stall: s.stall}
}

func (s stallWriter) Write(p []byte) (int, error) {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.stall)) // unsupported only without a connection (a recorder): nothing can stall
	n, err := s.w.Write(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("the client read nothing for %s: %w", s.stall, err)
	}
	return n, err
}

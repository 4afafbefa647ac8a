package api

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// hijacked is a client connection taken over from net/http for a raw
// stream: reads come through the server's buffer (which may already hold
// bytes the client sent), writes go straight to the socket.
type hijacked struct {
	conn net.Conn
	r    *bufio.Reader
}

func (h *hijacked) Read(p []byte) (int, error)  { return h.r.Read(p) }
func (h *hijacked) Write(p []byte) (int, error) { return h.conn.Write(p) }

// CloseWrite tells the client no more output comes.
func (h *hijacked) CloseWrite() error {
	if cw, ok := h.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (h *hijacked) Close() error { return h.conn.Close() }

// hijack takes the connection and answers the way Docker does: 101 with
// "Upgrade: tcp" when the client asked to upgrade, else 200, then the raw
// stream follows.
func hijack(w http.ResponseWriter, r *http.Request, contentType string) (*hijacked, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, fmt.Errorf("connection cannot be hijacked")
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, err
	}
	// A stream lives as long as its two ends do: no deadline a body read
	// before it (exec start's JSON) may have left.
	_ = conn.SetDeadline(time.Time{}) // fails only on a closed conn, which the first write reports
	if brw.Writer.Buffered() > 0 {
		if err := brw.Writer.Flush(); err != nil {
			_ = conn.Close()
			return nil, err
		}
	}
	if r.Header.Get("Upgrade") != "" {
		fmt.Fprintf(conn, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", contentType)
	} else {
		fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", contentType)
	}
	return &hijacked{conn: conn, r: brw.Reader}, nil
}

// flushWriter flushes after every write, for streamed responses.
type flushWriter struct {
	w io.Writer
	f http.Flusher
}

func newFlushWriter(w http.ResponseWriter) *flushWriter {
	f, _ := w.(http.Flusher)
	return &flushWriter{w: w, f: f}
}

func (fw *flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	if fw.f != nil {
		fw.f.Flush()
	}
	return n, err
}

// Flush is a no-op: every write is flushed already.
func (fw *flushWriter) Flush() {}

package api

import (
	"context"
	"encoding/binary"
	"io"
	"net/http"

	"golang.org/x/net/websocket"

	"github.com/lodge-containers/lodge/daemon"
)

// attachWS is GET /containers/{id}/attach/ws: the attach over a
// websocket, as browser consoles and docker-py's attach_socket(ws=True)
// use it. Each stream's bytes go raw, never multiplexed (the websocket
// frames them), in binary frames from API 1.28 on, in text frames before,
// as in Docker. The socket answers only its owner, so no origin is
// checked, as Docker checks none.
func (s *Server) attachWS(b ContainerBackend) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		tty, err := b.LogsTTY(id)
		if err != nil {
			return err
		}
		opts := daemon.AttachOptions{Stdin: boolValue(r, "stdin"), Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"),
			Stream: boolValue(r, "stream"), Logs: boolValue(r, "logs"), DetachKeys: r.URL.Query().Get("detachKeys")}
		connect, err := b.AttachFor(id, opts)
		if err != nil {
			return err
		}
		binaryFrames := cmpVersion(APIVersion(r.Context()), "1.28") >= 0
		served := false
		srv := websocket.Server{Handler: func(ws *websocket.Conn) {
			served = true
			if binaryFrames {
				ws.PayloadType = websocket.BinaryFrame
			}
			var out io.Writer = ws
			if !tty {
				// The monitor frames a tty-less container's output as
				// the plain attach sends it: the websocket takes the
				// payloads.
				out = &demuxWriter{w: ws}
			}
			conn := struct {
				io.Reader
				io.Writer
			}{ws, out}
			if err := connect(context.WithoutCancel(r.Context()), conn); err != nil {
				s.log.Debug("websocket attach ended", "id", id, "err", err)
			}
		}}
		srv.ServeHTTP(w, r)
		if !served {
			// The handshake failed (and was answered): drop the attach.
			_ = connect(r.Context(), nil)
		}
		return nil
	}
}

// demuxWriter takes Docker's multiplexed stream (8-byte headers, the
// stream in the first byte, the length in the last four) and writes
// only the payloads, each in one Write.
type demuxWriter struct {
	w    io.Writer
	head [8]byte
	have int    // bytes of head read
	left uint32 // payload bytes still to come in the current frame
}

func (d *demuxWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if d.left == 0 {
			c := copy(d.head[d.have:], p)
			d.have += c
			p = p[c:]
			if d.have == len(d.head) {
				d.left, d.have = binary.BigEndian.Uint32(d.head[4:]), 0
			}
			continue
		}
		take := min(uint32(len(p)), d.left)
		if _, err := d.w.Write(p[:take]); err != nil {
			return n - len(p), err
		}
		d.left -= take
		p = p[take:]
	}
	return n, nil
}

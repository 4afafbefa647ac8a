package tests

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// wsAttach opens GET /containers/{id}/attach/ws with query q on the
// session's socket, as its user.
func wsAttach(t *testing.T, s *session, version, id, q string) *websocket.Conn {
	t.Helper()
	cfg, err := websocket.NewConfig("ws://localhost/"+version+"/containers/"+id+"/attach/ws?"+q, "http://localhost")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := s.dialUnixAsUser(s.socket())
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.NewClient(cfg, conn)
	if err != nil {
		conn.Close()
		t.Fatalf("websocket attach to %s: %v", id, err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// readUntil reads the websocket until what it got holds want, or 20 s.
func readUntil(t *testing.T, ws *websocket.Conn, want string) string {
	t.Helper()
	var got bytes.Buffer
	buf := make([]byte, 4096)
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for !strings.Contains(got.String(), want) {
		n, err := ws.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			if err != io.EOF {
				t.Errorf("reading the websocket: %v", err)
			}
			break
		}
	}
	return got.String()
}

// TestAttachWebsocket: a websocket attach carries the container's
// input and output raw (no multiplexing headers, even without a tty),
// replays the logs when asked, and frames binary from API 1.28 on and
// as text before, as Docker does.
func TestAttachWebsocket(t *testing.T) {
	s, docker := containerSession(t)
	id := strings.TrimSpace(s.must(docker, "run", "-d", "-i", "--name", "wsecho", "busybox", "sh", "-c",
		"echo ready; while read line; do echo got:$line; echo err:$line >&2; done").stdout)

	ws := wsAttach(t, s, "v1.47", id, "stream=1&stdin=1&stdout=1&stderr=1&logs=1")
	if got := readUntil(t, ws, "ready\n"); got != "ready\n" {
		t.Errorf("the logs replayed over the websocket: %q, want the raw line", got)
	}
	if _, err := ws.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if got := readUntil(t, ws, "err:hello\n"); got != "got:hello\nerr:hello\n" && got != "err:hello\ngot:hello\n" {
		t.Errorf("the container's answer over the websocket: %q", got)
	}

	// Before API 1.28, text frames; stdout alone when asked.
	old := wsAttach(t, s, "v1.24", id, "stream=1&stdin=1&stdout=1")
	var msg string
	if _, err := old.Write([]byte("again\n")); err != nil {
		t.Fatal(err)
	}
	old.SetReadDeadline(time.Now().Add(20 * time.Second))
	if err := websocket.Message.Receive(old, &msg); err != nil || msg != "got:again\n" {
		t.Errorf("API 1.24 websocket attach: %q, %v; want a text frame of stdout", msg, err)
	}
	if r := s.run(docker, "logs", "wsecho"); !strings.Contains(r.stdout, "got:again") {
		t.Errorf("the container's log after the websocket attaches: %s", r)
	}

	// A missing container is refused before the handshake.
	cfg, _ := websocket.NewConfig("ws://localhost/v1.47/containers/nosuch/attach/ws?stream=1&stdout=1", "http://localhost")
	conn, err := s.dialUnixAsUser(s.socket())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := websocket.NewClient(cfg, conn); err == nil {
		t.Errorf("a websocket attach to a missing container was accepted")
	}
	s.must(docker, "rm", "-f", "wsecho")
}

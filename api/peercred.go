package api

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"os"
	"strconv"
	"strings"

	"github.com/lodge-containers/lodge/paths"
)

// OwnerOnly wraps a unix-socket listener so that Accept returns only
// connections from uid (paths.OwnerListener). Others get a 403 with a JSON
// message (so the docker CLI prints a reason) and are closed.
func OwnerOnly(l net.Listener, uid int, log *slog.Logger) net.Listener {
	return &paths.OwnerListener{Listener: l, UID: uid, PeerUID: peerUID, Refuse: func(c net.Conn, uid int, err error) {
		reason := refusal(uid, err)
		log.Warn("refused connection", "reason", reason)
		go refuse(c, reason)
	}}
}

func refuse(c net.Conn, reason string) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second)) // refused either way; this only bounds the wait
	// Read the request head first: closing on a client still writing makes
	// it report a broken pipe instead of the reason.
	if req, err := http.ReadRequest(bufio.NewReader(io.LimitReader(c, 1<<16))); err == nil {
		req.Body.Close()
	}
	body := fmt.Sprintf("{\"message\":%q}\n", "lodge: "+reason)
	fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
}

// peerUID is the connection's peer's uid.
var peerUID = paths.ConnPeerUID

// overflowUID is what a uid not mapped into this user namespace reads as
// (/proc/sys/kernel/overflowuid): the caller's real uid cannot be known
// from inside lodged's namespace.
const overflowUID = 65534

// refusal says why a connection was refused, in words for the caller.
func refusal(uid int, err error) string {
	switch {
	case err != nil:
		return "peer credentials unreadable: " + err.Error()
	case uid == overflowUID:
		return fmt.Sprintf("this lodged answers only its owner (uid %s); your user is not it. Start a lodged of your own with 'lodge daemon start'", ownerHostUID())
	}
	return fmt.Sprintf("uid %d is not the owner of this lodged", uid)
}

// ownerHostUID is the uid lodged runs as outside its user namespace, read
// from /proc/self/uid_map (the line that maps uid 0).
func ownerHostUID() string {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return strconv.Itoa(os.Getuid())
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "0" {
			return f[1]
		}
	}
	return strconv.Itoa(os.Getuid())
}

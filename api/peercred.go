package api

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sys/unix"
)

// ownerListener hands out only connections whose peer has the allowed uid,
// read with SO_PEERCRED. The socket's 0600 mode already keeps others out;
// this check holds even if the mode is changed or the file descriptor leaks.
type ownerListener struct {
	net.Listener
	uid int
	log *slog.Logger
	// peerUID is replaced in tests.
	peerUID func(net.Conn) (int, error)
}

// OwnerOnly wraps a unix-socket listener so that Accept returns only
// connections from uid. Others get a 403 with a JSON message (so the docker
// CLI prints a reason) and are closed.
func OwnerOnly(l net.Listener, uid int, log *slog.Logger) net.Listener {
	return &ownerListener{Listener: l, uid: uid, log: log, peerUID: peerUID}
}

func (l *ownerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, err := l.peerUID(c)
		if err == nil && uid == l.uid {
			return c, nil
		}
		reason := fmt.Sprintf("uid %d is not the owner of this lodged", uid)
		if err != nil {
			reason = "peer credentials unreadable: " + err.Error()
		}
		l.log.Warn("refused connection", "reason", reason)
		go refuse(c, reason)
	}
}

func refuse(c net.Conn, reason string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	// Read the request head first: closing on a client still writing makes
	// it report a broken pipe instead of the reason.
	if req, err := http.ReadRequest(bufio.NewReader(io.LimitReader(c, 1<<16))); err == nil {
		req.Body.Close()
	}
	body := fmt.Sprintf("{\"message\":%q}\n", "lodge: "+reason)
	fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
}

func peerUID(c net.Conn) (int, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1, errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if credErr != nil {
		return -1, credErr
	}
	return int(cred.Uid), nil
}

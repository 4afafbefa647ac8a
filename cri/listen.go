package cri

import (
	"errors"
	"log/slog"
	"net"

	"github.com/lodge-containers/lodge/paths"
)

// Listen listens on a unix socket at path, mode 0600, and hands out only
// connections whose peer has uid (SO_PEERCRED); others are logged and
// closed. gRPC has no way to carry a reason before its handshake, so a
// refused client sees the connection closed.
func Listen(path string, uid int, log *slog.Logger) (net.Listener, error) {
	l, err := paths.ListenPrivateSocket(path)
	if err != nil {
		return nil, err
	}
	return &ownerListener{Listener: l, uid: uid, log: log, peerUID: peerUID}, nil
}

type ownerListener struct {
	net.Listener
	uid int
	log *slog.Logger
	// peerUID is replaced in tests.
	peerUID func(net.Conn) (int, error)
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
		l.log.Warn("refused CRI connection", "uid", uid, "err", err)
		c.Close()
	}
}

func peerUID(c net.Conn) (int, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1, errors.New("not a unix socket")
	}
	return paths.PeerUID(uc)
}

package cri

import (
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
	return &paths.OwnerListener{Listener: l, UID: uid, PeerUID: paths.ConnPeerUID, Refuse: func(c net.Conn, uid int, err error) {
		log.Warn("refused CRI connection", "uid", uid, "err", err)
		_ = c.Close() // refused either way
	}}, nil
}

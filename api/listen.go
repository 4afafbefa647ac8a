package api

import (
	"log/slog"
	"net"

	"github.com/lodge-containers/lodge/paths"
)

// ListenOwnerSocket listens on a unix socket at path, mode 0600, served
// only to uid (paths.ListenPrivateSocket says what happens to a file
// already there).
func ListenOwnerSocket(path string, uid int, log *slog.Logger) (net.Listener, error) {
	l, err := paths.ListenPrivateSocket(path)
	if err != nil {
		return nil, err
	}
	return OwnerOnly(l, uid, log), nil
}

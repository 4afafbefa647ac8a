package paths

import (
	"context"
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// ErrNotOwner is returned by DialOwner when the process listening on the
// socket is not the user's.
var ErrNotOwner = errors.New("not your lodged")

// DialOwner connects to the unix socket at path and checks, before a byte
// is sent, that the process serving it runs as uid (SO_PEERCRED, read in
// this process's user namespace). A socket planted in a shared /tmp by
// another user is refused: what the CLI would send (credentials for
// login, a build context) never reaches them.
func DialOwner(ctx context.Context, path string, uid int) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	peer, err := PeerUID(c.(*net.UnixConn))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: reading who serves it: %w", path, err)
	}
	if peer != uid {
		c.Close()
		return nil, fmt.Errorf("%s is served by uid %d, not by you (uid %d); nothing was sent. Another user may have planted it: use a runtime dir of your own (XDG_RUNTIME_DIR, or --host): %w", path, peer, uid, ErrNotOwner)
	}
	return c, nil
}

// PeerUID is the uid of the process at the other end of c, as this
// process's user namespace sees it (SO_PEERCRED).
func PeerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
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

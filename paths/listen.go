package paths

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// ListenPrivateSocket listens on a unix socket at path, mode 0600, removed
// when the listener closes. A socket file left by a daemon that was killed
// is replaced; the caller must hold the daemon lock, so nothing live is
// listening there. Anything that is not a socket at path is left alone and
// reported. The caller checks each peer (PeerUID): the mode alone does not
// hold if it is changed or the descriptor leaks.
func ListenPrivateSocket(path string) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket; remove it if it is not needed", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(true)
	return ul, nil
}

// OwnerListener hands out only connections whose peer has UID, read with
// SO_PEERCRED. A socket's 0600 mode already keeps others out; this check
// holds even if the mode is changed or the file descriptor leaks.
type OwnerListener struct {
	net.Listener
	UID int
	// Refuse gets every other connection, with the uid its peer has (or
	// why it could not be read); it must close it.
	Refuse func(c net.Conn, uid int, err error)
	// PeerUID reads a connection's peer uid (ConnPeerUID; tests replace it).
	PeerUID func(net.Conn) (int, error)
}

// Accept returns the next connection from UID, refusing the others.
func (l *OwnerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, err := l.PeerUID(c)
		if err == nil && uid == l.UID {
			return c, nil
		}
		l.Refuse(c, uid, err)
	}
}

// ConnPeerUID is PeerUID of a connection that must be a unix socket's.
func ConnPeerUID(c net.Conn) (int, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1, errors.New("not a unix socket")
	}
	return PeerUID(uc)
}

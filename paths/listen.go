package paths

import (
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

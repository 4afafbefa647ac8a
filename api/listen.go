package api

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"syscall"
)

// ListenOwnerSocket listens on a unix socket at path, mode 0600, served
// only to uid. A socket file left by a daemon that was killed is replaced;
// the caller must hold the daemon lock, so nothing live is listening there.
// Anything that is not a socket at path is left alone and reported.
func ListenOwnerSocket(path string, uid int, log *slog.Logger) (net.Listener, error) {
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
	l.(*net.UnixListener).SetUnlinkOnClose(true)
	return OwnerOnly(l, uid, log), nil
}

package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
)

// activatedListener is the API socket systemd (or systemd-socket-activate)
// made for this process, nil when it made none. The variables that say so
// are removed, so no later stage mistakes them for its own.
func activatedListener() (*os.File, error) {
	files := activation.Files(true)
	switch len(files) {
	case 0:
		return nil, nil
	case 1:
	default:
		for _, f := range files {
			f.Close()
		}
		return nil, fmt.Errorf("systemd passed %d sockets; lodged.socket must have one ListenStream", len(files))
	}
	// Refused here, before the namespace is built, rather than in the
	// daemon stage: a datagram socket or a TCP port is a unit mistake.
	l, err := net.FileListener(files[0])
	if err != nil {
		files[0].Close()
		return nil, fmt.Errorf("the socket systemd passed: %w", err)
	}
	defer l.Close()
	if _, ok := l.(*net.UnixListener); !ok {
		files[0].Close()
		return nil, fmt.Errorf("the socket systemd passed is %s, not a unix stream socket (ListenStream=%%t/lodge/lodge.sock)", l.Addr())
	}
	return files[0], nil
}

// socketPath is the path a unix listener passed as f is bound to.
func socketPath(f *os.File) string {
	l, err := net.FileListener(f)
	if err != nil {
		return ""
	}
	defer l.Close()
	return l.Addr().String()
}

// inheritedListener is the listener the keeper passed the daemon stage as
// descriptor fd (userns.EnvListenFD).
func inheritedListener(fd string) (net.Listener, error) {
	n, err := strconv.Atoi(fd)
	if err != nil || n < 3 {
		return nil, fmt.Errorf("inherited listener: bad descriptor %q", fd)
	}
	f := os.NewFile(uintptr(n), "lodge.sock")
	defer f.Close() // FileListener holds its own, close-on-exec, copy
	return net.FileListener(f)
}

// notifier sends sd_notify messages to the socket systemd named in
// NOTIFY_SOCKET (Type=notify). Only the service's main process may
// notify, and that is this one: the variable is taken out of the
// environment so that the stages it starts do not try.
type notifier struct{ addr string }

func takeNotifySocket() notifier {
	n := notifier{addr: os.Getenv("NOTIFY_SOCKET")}
	os.Unsetenv("NOTIFY_SOCKET")
	return n
}

// send sends state ("READY=1", "STOPPING=1"); without a socket it does
// nothing.
func (n notifier) send(state string) error {
	if n.addr == "" {
		return nil
	}
	addr := n.addr
	if addr[0] == '@' { // an abstract socket
		addr = "\x00" + addr[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// answers tells whether lodged's API on sock answers a ping. Dialing is
// not enough: an activated socket accepts connections before lodged
// serves them.
func answers(sock string) bool {
	hc := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://lodge/_ping")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

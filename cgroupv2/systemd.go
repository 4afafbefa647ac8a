package cgroupv2

import (
	"context"
	"os"
	"strconv"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// DialSystemd connects to the systemd manager on the bus at address, as
// the caller's uid (EXTERNAL authentication: call it from the host's user
// namespace, where that uid is the user's). It never starts a bus, unlike
// godbus's session-bus helpers, which may launch dbus-launch.
func DialSystemd(ctx context.Context, address string) (Systemd, error) {
	c, err := sddbus.NewConnection(func() (*dbus.Conn, error) {
		conn, err := dbus.Dial(address, dbus.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
			_ = conn.Close() // the Auth error is the one to report
			return nil, err
		}
		if err := conn.Hello(); err != nil {
			_ = conn.Close() // the Hello error is the one to report
			return nil, err
		}
		return conn, nil
	})
	if err != nil {
		return nil, err
	}
	return systemdConn{c}, nil
}

type systemdConn struct{ c *sddbus.Conn }

var _ Systemd = systemdConn{}

func (s systemdConn) StartTransientUnit(ctx context.Context, name string, props []sddbus.Property) (string, error) {
	done := make(chan string, 1)
	if _, err := s.c.StartTransientUnitContext(ctx, name, "fail", props, done); err != nil {
		return "", err
	}
	select {
	case res := <-done:
		return res, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (s systemdConn) Close() { s.c.Close() }

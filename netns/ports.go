package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/rootless-containers/rootlesskit/v3/pkg/api/client"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port"

	"github.com/lodge-containers/lodge/errdefs"
)

// Forward is one published port: the host side (HostIP, HostPort, where
// "" means every address) forwarded to a container's address and port.
type Forward struct {
	Proto    string // "tcp" or "udp"
	HostIP   string
	HostPort int
	ChildIP  string
	Port     int
}

func (f Forward) spec() port.Spec {
	proto := f.Proto
	if ip := net.ParseIP(f.HostIP); ip != nil && ip.To4() != nil {
		proto += "4" // an IPv4 address listens on IPv4 only
	}
	return port.Spec{Proto: proto, ParentIP: f.HostIP, ParentPort: f.HostPort, ChildIP: f.ChildIP, ChildPort: f.Port}
}

// Ports publishes ports on the host through rootlesskit's port driver,
// which lodged's host-side parent runs; this talks to it over its API
// socket (api.sock in rootlesskit's state directory). The driver keeps the
// forwards while the namespace lives, across restarts of the daemon. Safe
// for concurrent use.
type Ports struct {
	pm port.Manager
}

// NewPorts connects to rootlesskit's API socket.
func NewPorts(apiSocket string) (*Ports, error) {
	c, err := client.New(apiSocket)
	if err != nil {
		return nil, err
	}
	return &Ports{pm: c.PortManager()}, nil
}

// Publish adds a forward. A port below the host's
// net.ipv4.ip_unprivileged_port_start, or already taken, is an error that
// says so.
func (p *Ports) Publish(ctx context.Context, f Forward) error {
	if start := unprivilegedPortStart(); f.HostPort < start {
		return errdefs.PermissionDeniedf("cannot publish port %d: ports below %d are privileged on this host (net.ipv4.ip_unprivileged_port_start); choose a port of %d or more, or have an administrator lower that sysctl", f.HostPort, start, start)
	}
	_, err := p.pm.AddPort(ctx, f.spec())
	if err != nil {
		msg := err.Error()
		addr := net.JoinHostPort(orAll(f.HostIP), strconv.Itoa(f.HostPort))
		switch {
		case strings.Contains(msg, "address already in use"), strings.Contains(msg, "conflict"):
			return errdefs.Conflictf("Bind for %s failed: port is already allocated", addr)
		case strings.Contains(msg, "permission denied"):
			return errdefs.PermissionDeniedf("cannot publish %s: permission denied", addr)
		}
		return fmt.Errorf("publishing %s/%s: %w", addr, f.Proto, err)
	}
	return nil
}

func orAll(ip string) string {
	if ip == "" {
		return "0.0.0.0"
	}
	return ip
}

// Unpublish removes the forwards that match fs; ones already gone are
// skipped.
func (p *Ports) Unpublish(ctx context.Context, fs []Forward) error {
	if len(fs) == 0 {
		return nil
	}
	have, err := p.pm.ListPorts(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range fs {
		want := f.spec()
		for _, st := range have {
			if st.Spec == want {
				if err := p.pm.RemovePort(ctx, st.ID); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Ensure publishes those of fs that the driver does not have: after a
// daemon restart, it restores what a running container published.
func (p *Ports) Ensure(ctx context.Context, fs []Forward) error {
	have, err := p.pm.ListPorts(ctx)
	if err != nil {
		return err
	}
	var errs []error
next:
	for _, f := range fs {
		for _, st := range have {
			if st.Spec == f.spec() {
				continue next
			}
		}
		errs = append(errs, p.Publish(ctx, f))
	}
	return errors.Join(errs...)
}

// unprivilegedPortStart reads the host's sysctl (lodged runs in the host's
// network namespace, so /proc/sys/net is the host's); 1024 when unreadable.
func unprivilegedPortStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 1024
	}
	return n
}

// FreePort asks the host for a free port of proto on ip ("" for any), for
// -P and -p without a host port.
func FreePort(proto, ip string) (int, error) {
	if proto == "udp" {
		c, err := net.ListenPacket("udp4", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp4", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

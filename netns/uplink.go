package netns

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"

	"github.com/rootless-containers/rootlesskit/v3/pkg/network"
	"github.com/rootless-containers/rootlesskit/v3/pkg/network/pasta"
	"github.com/rootless-containers/rootlesskit/v3/pkg/network/slirp4netns"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
	portbuiltinchild "github.com/rootless-containers/rootlesskit/v3/pkg/port/builtin/child"
	portbuiltinparent "github.com/rootless-containers/rootlesskit/v3/pkg/port/builtin/parent"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/paths"
)

// Uplink driver names, as --network-driver takes them.
const (
	Auto        = "auto"
	Pasta       = "pasta"
	Slirp4netns = "slirp4netns"
	GvisorTap   = "gvisor-tap-vsock"
	None        = "none" // detached namespace with loopback only
)

// Choice is the uplink lodged will use and why.
type Choice struct {
	Name    string
	Parent  network.ParentDriver // nil for None
	Skipped []string             // one line per driver passed over in auto mode, with the reason
}

// Choose builds the parent-side driver. With Auto it takes the first of
// pasta, slirp4netns and gvisor-tap-vsock that can work here and records
// why the others were passed over. Debian 12's pasta (2023-03) lacks
// --host-lo-to-ns-lo, which rootlesskit's pasta driver expects, so auto
// only takes a pasta that has it. An explicit name that cannot work is an
// error, never a silent switch.
func Choose(requested string, logw io.Writer) (Choice, error) {
	switch requested {
	case "", Auto:
		var c Choice
		for _, name := range []string{Pasta, Slirp4netns, GvisorTap} {
			if why := unusable(name); why != "" {
				c.Skipped = append(c.Skipped, name+": "+why)
				continue
			}
			d, err := parentDriver(name, logw)
			if err != nil {
				c.Skipped = append(c.Skipped, name+": "+err.Error())
				continue
			}
			c.Name, c.Parent = name, d
			return c, nil
		}
		return Choice{}, errdefs.Unavailablef("no network driver can work here (%s); run with --network-driver=none for containers without outbound network", strings.Join(c.Skipped, "; "))
	case None:
		return Choice{Name: None}, nil
	case Pasta, Slirp4netns, GvisorTap:
		if why := unusable(requested); why != "" {
			return Choice{}, errdefs.Unavailablef("network driver %s: %s", requested, why)
		}
		d, err := parentDriver(requested, logw)
		if err != nil {
			return Choice{}, fmt.Errorf("network driver %s: %w", requested, err)
		}
		return Choice{Name: requested, Parent: d}, nil
	default:
		return Choice{}, errdefs.InvalidArgumentf("unknown network driver %q (want auto, pasta, slirp4netns, gvisor-tap-vsock or none)", requested)
	}
}

// unusable says why a driver cannot work on this machine, or "".
func unusable(name string) string {
	if f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0); err != nil {
		return "/dev/net/tun cannot be opened (" + err.Error() + ")"
	} else {
		f.Close()
	}
	switch name {
	case Pasta:
		if _, err := exec.LookPath("pasta"); err != nil {
			return "pasta is not installed"
		}
		feat, err := pasta.DetectFeatures("pasta")
		if err != nil {
			return err.Error()
		}
		if !feat.HasHostLoToNsLo {
			return "this pasta is older than 2023-12 (no --host-lo-to-ns-lo)"
		}
	case Slirp4netns:
		if _, err := exec.LookPath("slirp4netns"); err != nil {
			return "slirp4netns is not installed"
		}
	case GvisorTap:
		if _, err := paths.Helper(UsernetBinary); err != nil {
			return err.Error()
		}
	}
	return ""
}

// UplinkCIDR is the subnet between the detached namespace and its uplink,
// the same for every driver. The addresses the drivers give meaning inside
// it differ: see UplinkAddrs.
const UplinkCIDR = "10.0.2.0/24"

func parentDriver(name string, logw io.Writer) (network.ParentDriver, error) {
	_, ipnet, err := net.ParseCIDR(UplinkCIDR)
	if err != nil {
		return nil, err
	}
	switch name {
	case Pasta:
		return pasta.NewParentDriver(logw, "pasta", 0, ipnet, "", "", false, false, false)
	case Slirp4netns:
		feat, err := slirp4netns.DetectFeatures("slirp4netns")
		if err != nil {
			return nil, err
		}
		// slirp4netns's --enable-sandbox cannot work with a detached
		// namespace (slirp4netns issue 317); its seccomp filter can.
		seccomp := feat.SupportsEnableSeccomp && feat.KernelSupportsEnableSeccomp
		return slirp4netns.NewParentDriver(logw, "slirp4netns", 0, ipnet, "", false, "", false, seccomp, false)
	case GvisorTap:
		return &usernetParent{logw: logw}, nil
	}
	return nil, fmt.Errorf("no parent driver for %q", name)
}

// ChildDriver is the namespace-side half of the named driver, nil for None.
func ChildDriver(name string) (network.ChildDriver, error) {
	switch name {
	case Pasta:
		return pasta.NewChildDriver(), nil
	case Slirp4netns:
		return slirp4netns.NewChildDriver(), nil
	case GvisorTap:
		return usernetChild{logw: os.Stderr}, nil
	case None, "":
		return nil, nil
	}
	return nil, errors.New("unknown network driver " + name)
}

// PortDrivers are the halves of rootlesskit's builtin port driver, which
// forwards published ports from the host into the detached namespace for
// every uplink. stateDir is rootlesskit's state directory.
func PortParent(logw io.Writer, stateDir string) (port.ParentDriver, error) {
	return portbuiltinparent.NewDriver(logw, stateDir, false, "")
}

// PortChild is the namespace side of the builtin port driver.
func PortChild(logw io.Writer) port.ChildDriver { return portbuiltinchild.NewDriver(logw) }

// UplinkAddrs are the addresses, in UplinkCIDR, at which a driver shows
// the host's loopback and its DNS forwarder to lodged's namespace (and,
// through NAT, to containers): 10.0.2.2 and 10.0.2.3 for slirp4netns and
// pasta, 10.0.2.1 for both with rootlesskit's gvisor-tap-vsock. Empty for
// None.
func UplinkAddrs(driver string) (hostLoopback, dns string) {
	switch driver {
	case Slirp4netns, Pasta:
		return "10.0.2.2", "10.0.2.3"
	case GvisorTap:
		return "10.0.2.1", "10.0.2.1"
	}
	return "", ""
}

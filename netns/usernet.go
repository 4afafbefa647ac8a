package netns

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"

	"github.com/vishvananda/netlink"

	"github.com/rootless-containers/rootlesskit/v3/pkg/api"
	"github.com/rootless-containers/rootlesskit/v3/pkg/messages"
	"github.com/rootless-containers/rootlesskit/v3/pkg/network"

	"github.com/lodge-containers/lodge/paths"
)

// UsernetBinary runs the built-in gvisor-tap-vsock uplink outside lodged.
// The driver's packages (gvisor's netstack and gopacket) write about 7 MiB
// of lookup tables at start-up in every process that links them; lodged
// runs as four processes, so linking them cost 28 MiB at rest even when
// slirp4netns carries the traffic. In a binary of its own the cost is paid
// only by the one process that uses it, and only when it is chosen.
const UsernetBinary = "lodge-usernet"

// The addresses gvisor-tap-vsock's parent half gives the uplink in
// UplinkCIDR (the first host for the gateway, which also answers DNS and
// shows the host's loopback, the 100th for the namespace) and its MTU.
var (
	UsernetGateway = net.IPv4(10, 0, 2, 1).To4()
	UsernetChildIP = net.IPv4(10, 0, 2, 100).To4()
)

const UsernetMTU = 65520

// UsernetReply is the one line lodge-usernet writes on stdout once its
// half of the network is up (Msg for the parent half, Dev for the child's),
// or with Error when it could not be.
type UsernetReply struct {
	Msg   *messages.ParentInitNetworkDriverCompleted `json:"msg,omitempty"`
	Dev   string                                     `json:"dev,omitempty"`
	Error string                                     `json:"error,omitempty"`
}

// startUsernet runs lodge-usernet with args, writes input (if any) to its
// stdin and returns its reply. The helper lives until it is interrupted or
// its parent process is gone.
func startUsernet(logw io.Writer, input any, args ...string) (UsernetReply, *exec.Cmd, error) {
	bin, err := paths.Helper(UsernetBinary)
	if err != nil {
		return UsernetReply{}, nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logw
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return UsernetReply{}, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return UsernetReply{}, nil, err
	}
	if err := cmd.Start(); err != nil {
		return UsernetReply{}, nil, err
	}
	if input != nil {
		if err := json.NewEncoder(stdin).Encode(input); err != nil {
			cmd.Process.Kill()
			_ = cmd.Wait() // reaps the killed process: its exit says nothing new
			return UsernetReply{}, nil, err
		}
	}
	var r UsernetReply
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &r)
	}
	if err == nil && r.Error != "" {
		err = errors.New(r.Error)
	}
	if err != nil {
		cmd.Process.Kill()
		_ = cmd.Wait() // as above
		return UsernetReply{}, nil, fmt.Errorf("%s %s: %w", UsernetBinary, args[0], err)
	}
	_ = stdin.Close() // the input is read: the reply above says so
	return r, cmd, nil
}

// usernetParent is gvisor-tap-vsock's parent half, run by lodge-usernet.
type usernetParent struct {
	logw io.Writer
	mu   sync.Mutex
	msg  *messages.ParentInitNetworkDriverCompleted
}

var _ network.ParentDriver = (*usernetParent)(nil)

func (d *usernetParent) Info(context.Context) (*api.NetworkDriverInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	info := &api.NetworkDriverInfo{Driver: GvisorTap}
	if d.msg != nil {
		info.ChildIP = net.ParseIP(d.msg.IP)
		for _, s := range d.msg.DNS {
			info.DNS = append(info.DNS, net.ParseIP(s))
		}
	}
	return info, nil
}

// MTU is the one gvisor-tap-vsock uses by default: large frames multiply
// throughput through a user-mode stack.
func (d *usernetParent) MTU() int { return UsernetMTU }

func (d *usernetParent) ConfigureNetwork(childPID int, stateDir, detachedNetNSPath string) (*messages.ParentInitNetworkDriverCompleted, func() error, error) {
	r, cmd, err := startUsernet(d.logw, nil, "parent", strconv.Itoa(childPID), stateDir, detachedNetNSPath)
	if err != nil {
		return nil, nil, err
	}
	d.mu.Lock()
	d.msg = r.Msg
	d.mu.Unlock()
	cleanup := func() error {
		_ = cmd.Process.Signal(os.Interrupt) // fails only on a process already gone
		_ = cmd.Wait()                       // reaps it: an interrupted helper's exit status is expected
		return nil
	}
	return r.Msg, cleanup, nil
}

// usernetChild is gvisor-tap-vsock's namespace half: it opens the tap in
// the detached namespace and forwards frames to the parent half's socket.
type usernetChild struct{ logw io.Writer }

var _ network.ChildDriver = usernetChild{}

func (usernetChild) ChildDriverInfo() (*network.ChildDriverInfo, error) {
	return &network.ChildDriverInfo{ConfiguresInterface: false}, nil
}

func (d usernetChild) ConfigureNetworkChild(msg *messages.ParentInitNetworkDriverCompleted, detachedNetNSPath string) (string, error) {
	r, _, err := startUsernet(d.logw, msg, "child", detachedNetNSPath)
	if err != nil {
		return "", err
	}
	return r.Dev, nil
}

// startUsernetReattach brings the gvisor-tap-vsock uplink back on the
// namespace at nsPath from inside lodged's user namespace (see
// lodge-usernet reattach): it makes tap0 as rootlesskit's parent half and
// child configure it, replacing the dead uplink's, then starts the virtual
// network and the forwarder.
func startUsernetReattach(stateDir, nsPath string, logw io.Writer) (*exec.Cmd, error) {
	if err := in(nsPath, func(h *netlink.Handle) error {
		// The dead uplink's tap outlives its forwarder (it is
		// persistent), with the route on it; a new one is made whole.
		if err := delGoneTap(h); err != nil {
			return fmt.Errorf("removing the dead uplink's tap: %w", err)
		}
		tap := &netlink.Tuntap{
			LinkAttrs: netlink.LinkAttrs{Name: "tap0", MTU: UsernetMTU},
			Mode:      netlink.TUNTAP_MODE_TAP,
			Flags:     netlink.TUNTAP_NO_PI,
		}
		if err := h.LinkAdd(tap); err != nil {
			return fmt.Errorf("making tap0: %w", err)
		}
		l, err := h.LinkByName("tap0")
		if err != nil {
			return err
		}
		if err := h.LinkSetMTU(l, UsernetMTU); err != nil {
			return err
		}
		if err := h.LinkSetUp(l); err != nil {
			return err
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: UsernetChildIP, Mask: net.CIDRMask(24, 32)}}
		if err := h.AddrAdd(l, addr); err != nil {
			return fmt.Errorf("tap0's address: %w", err)
		}
		if err := h.RouteReplace(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: UsernetGateway}); err != nil {
			return fmt.Errorf("the default route: %w", err)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	_, cmd, err := startUsernet(logw, nil, "reattach", stateDir, nsPath)
	return cmd, err
}

// Command lodge-usernet runs lodge's built-in user-mode network, rootlesskit's
// gvisor-tap-vsock driver, in a process of its own (see netns.UsernetBinary
// for why). lodged starts it; it is not meant to be run by hand.
//
//	lodge-usernet parent CHILD_PID STATE_DIR NETNS   the virtual network, in the host's namespaces
//	lodge-usernet child NETNS                        the tap forwarder, in lodged's namespaces
//	lodge-usernet reattach STATE_DIR NETNS           both, in lodged's user namespace
//
// reattach is how the keeper brings the uplink back after the host side
// died: it already runs in lodged's user namespace, which the parent half's
// nsenter cannot enter again (setns into one's own user namespace fails),
// so the virtual network runs here, in the host's network namespace, and
// the forwarder joins only the uplink's network namespace. The keeper has
// made the tap (tap0, configured as rootlesskit's child configures it).
//
// Each writes one JSON line (netns.UsernetReply) on stdout once its half is
// up, then serves until it is interrupted or the process that started it is
// gone. That process is watched by its pid, not by a pipe: rootlesskit's
// child stage ends by exec'ing lodged's next stage, which closes every
// close-on-exec descriptor but keeps the pid (and so the network).
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/rootless-containers/rootlesskit/v3/pkg/messages"
	"github.com/rootless-containers/rootlesskit/v3/pkg/network/gvisortapvsock"

	"github.com/lodge-containers/lodge/netns"
)

func main() {
	out := json.NewEncoder(os.Stdout)
	cleanup, err := run(os.Args[1:], out)
	if err != nil {
		// Stdout is the reply; when it cannot be written, the log
		// (stderr) is left to say why.
		if eerr := out.Encode(netns.UsernetReply{Error: err.Error()}); eerr != nil {
			fmt.Fprintln(os.Stderr, "lodge-usernet:", err)
		}
		os.Exit(1)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	parent := os.Getppid()
	tick := time.NewTicker(time.Second)
	for alive := true; alive; {
		select {
		case <-stop:
			alive = false
		case <-tick.C:
			alive = os.Getppid() == parent
		}
	}
	if cleanup != nil {
		if err := cleanup(); err != nil {
			fmt.Fprintln(os.Stderr, "lodge-usernet: stopping:", err)
		}
	}
}

func run(args []string, out *json.Encoder) (func() error, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("usage: lodge-usernet parent CHILD_PID STATE_DIR NETNS | child NETNS | reattach STATE_DIR NETNS")
	}
	switch {
	case args[0] == "parent" && len(args) == 4:
		pid, err := strconv.Atoi(args[1])
		if err != nil {
			return nil, fmt.Errorf("child pid %q: %w", args[1], err)
		}
		_, ipnet, err := net.ParseCIDR(netns.UplinkCIDR)
		if err != nil {
			return nil, err
		}
		d, err := gvisortapvsock.NewParentDriver(os.Stderr, 0, ipnet, "", false, false)
		if err != nil {
			return nil, err
		}
		msg, cleanup, err := d.ConfigureNetwork(pid, args[2], args[3])
		if err != nil {
			return cleanup, err
		}
		// The virtual network object stays here; only the port driver of
		// the same name reads it, and lodged uses the builtin one.
		msg.Network = nil
		return cleanup, out.Encode(netns.UsernetReply{Msg: msg})
	case args[0] == "child" && len(args) == 2:
		var msg messages.ParentInitNetworkDriverCompleted
		if err := json.NewDecoder(os.Stdin).Decode(&msg); err != nil {
			return nil, fmt.Errorf("reading the network message: %w", err)
		}
		dev, err := gvisortapvsock.NewChildDriver().ConfigureNetworkChild(&msg, args[1])
		if err != nil {
			return nil, err
		}
		return nil, out.Encode(netns.UsernetReply{Dev: dev})
	case args[0] == "reattach" && len(args) == 3:
		cleanup, err := reattach(args[1], args[2])
		if err != nil {
			return cleanup, err
		}
		return cleanup, out.Encode(netns.UsernetReply{Dev: "tap0"})
	}
	return nil, fmt.Errorf("unknown call %q", args)
}

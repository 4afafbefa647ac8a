package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// NetDev is one interface's counters from /proc/PID/net/dev.
type NetDev struct {
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// NetDevs reads the interface counters of the network namespace pid is
// in, by interface name: what `docker stats` shows as NET I/O, read
// without entering the namespace.
func NetDevs(pid int) (map[string]NetDev, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil, err
	}
	return parseNetDev(string(b))
}

// parseNetDev reads net/dev's table: two header lines, then
// "name: rx_bytes rx_packets rx_errs rx_drop fifo frame compressed
// multicast tx_bytes tx_packets tx_errs tx_drop ...".
func parseNetDev(s string) (map[string]NetDev, error) {
	out := map[string]NetDev{}
	for _, line := range strings.Split(s, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.Contains(name, "|") {
			continue // a header line
		}
		f := strings.Fields(rest)
		if len(f) < 12 {
			return nil, fmt.Errorf("net/dev: short line for %q", strings.TrimSpace(name))
		}
		var n [12]uint64
		for i := range n {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("net/dev: %q: %w", strings.TrimSpace(name), err)
			}
			n[i] = v
		}
		out[strings.TrimSpace(name)] = NetDev{
			RxBytes: n[0], RxPackets: n[1], RxErrors: n[2], RxDropped: n[3],
			TxBytes: n[8], TxPackets: n[9], TxErrors: n[10], TxDropped: n[11],
		}
	}
	return out, nil
}

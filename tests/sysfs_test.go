package tests

import (
	"strings"
	"testing"
)

// /sys/class/net inside a container lists the interfaces of the network
// namespace it is in, as with Docker: its own on a bridge, the uplink's
// with --network host, the other container's with container:NAME.
func TestSysfsShowsOwnInterfaces(t *testing.T) {
	s, docker := containerSession(t)
	ifaces := func(args ...string) string {
		t.Helper()
		out := s.must(docker, append(append([]string{"run", "--rm"}, args...), "busybox", "ls", "/sys/class/net")...).stdout
		return strings.Join(strings.Fields(out), " ")
	}
	if got := ifaces(); got != "eth0 lo" {
		t.Errorf("bridge container: /sys/class/net holds %q, want eth0 lo", got)
	}
	if got := ifaces("--network", "none"); got != "lo" {
		t.Errorf("--network none: /sys/class/net holds %q, want lo", got)
	}
	// The uplink's namespace also holds lodge's bridges and their veths.
	if got := ifaces("--network", "host"); !strings.Contains(" "+got+" ", " tap0 ") || strings.Contains(got, "eth0") {
		t.Errorf("--network host: /sys/class/net holds %q, want the uplink's tap0", got)
	}
	s.must(docker, "run", "-d", "--name", "netowner", "busybox", "sleep", "1000")
	if got := ifaces("--network", "container:netowner"); got != "eth0 lo" {
		t.Errorf("--network container: /sys/class/net holds %q, want eth0 lo", got)
	}
	s.must(docker, "rm", "-f", "netowner")
}

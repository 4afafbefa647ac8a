package tests

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// apiCall sends one request to lodged as the test user (curl over the
// socket: lodged answers its owner only) and returns the status and body.
func (s *session) apiCall(t *testing.T, method, path, contentType, body string) (int, string) {
	t.Helper()
	args := []string{"-s", "--unix-socket", s.socket(), "-X", method, "-w", "\n%{http_code}"}
	if contentType != "" {
		args = append(args, "-H", "Content-Type: "+contentType)
	}
	if body != "" {
		args = append(args, "--data-binary", body)
	}
	r := s.must("curl", append(args, "http://lodge"+path)...)
	i := strings.LastIndex(r.stdout, "\n")
	code, err := strconv.Atoi(r.stdout[i+1:])
	if err != nil {
		t.Fatalf("curl %s %s: %s", method, path, r)
	}
	return code, r.stdout[:i]
}

// TestFidelityNetworkAddressing: --ip-range, --aux-address and --gateway
// decide which addresses containers get, as in Docker; a /31 is a
// point-to-point link; bad address configuration is refused with Docker's
// words.
func TestFidelityNetworkAddressing(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "network", "create", "--subnet", "10.81.0.0/24", "--ip-range", "10.81.0.128/26",
		"--gateway", "10.81.0.1", "--aux-address", "printer=10.81.0.128", "ranged")
	cfg := s.must(docker, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.IPRange}} {{.Gateway}} {{.AuxiliaryAddresses}}{{end}}", "ranged").stdout
	if cfg != "10.81.0.0/24 10.81.0.128/26 10.81.0.1 map[printer:10.81.0.128]\n" {
		t.Errorf("inspect ranged: %q", cfg)
	}
	s.must(docker, "run", "-d", "--name", "r1", "--network", "ranged", "busybox", "sleep", "300")
	s.must(docker, "run", "-d", "--name", "r2", "--network", "ranged", "busybox", "sleep", "300")
	// .128 is the auxiliary address: the range's next ones are given.
	if ip := s.ipOf(docker, "r1", "ranged"); ip != "10.81.0.129" {
		t.Errorf("r1 on ranged: %s", ip)
	}
	if ip := s.ipOf(docker, "r2", "ranged"); ip != "10.81.0.130" {
		t.Errorf("r2 on ranged: %s", ip)
	}
	// An address asked for may lie outside the range, inside the subnet.
	s.must(docker, "run", "-d", "--name", "r3", "--network", "ranged", "--ip", "10.81.0.7", "busybox", "sleep", "300")
	if out := s.must(docker, "exec", "r1", "busybox", "ping", "-c", "1", "-W", "3", "10.81.0.7").stdout; !strings.Contains(out, "1 packets received") {
		t.Errorf("r1 to r3: %s", out)
	}
	if r := s.run(docker, "run", "--rm", "--network", "ranged", "--ip", "10.81.0.128", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "10.81.0.128") {
		t.Errorf("the auxiliary address given to a container: %s", r)
	}

	// The docker CLI checks some of these itself: ask the API.
	for _, c := range []struct{ ipam, msg string }{
		{`{"Subnet":"10.82.0.0/24","IPRange":"10.83.0.0/25"}`, "invalid ip-range 10.83.0.0/25: parent subnet 10.82.0.0/24 doesn't contain ip-range"},
		{`{"Subnet":"10.82.0.0/24","AuxiliaryAddresses":{"a":"10.83.0.5"}}`, "invalid auxiliary address a: parent subnet 10.82.0.0/24 doesn't contain this address"},
		{`{"Subnet":"10.82.0.1/24"}`, "invalid subnet 10.82.0.1/24: it should be 10.82.0.0/24"},
	} {
		code, body := s.apiCall(t, "POST", "/v1.51/networks/create", "application/json", `{"Name":"bad","IPAM":{"Config":[`+c.ipam+`]}}`)
		var e struct{ Message string }
		json.Unmarshal([]byte(body), &e)
		if code != 400 || e.Message != "invalid network config:\n"+c.msg {
			t.Errorf("network create with %s: %d %s", c.ipam, code, body)
		}
	}

	// A /31 has two addresses, the gateway's and one container's.
	s.must(docker, "network", "create", "--subnet", "10.84.0.0/31", "p2p")
	if gw := s.must(docker, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", "p2p").stdout; gw != "10.84.0.0\n" {
		t.Errorf("p2p gateway: %q", gw)
	}
	s.must(docker, "run", "-d", "--name", "pp", "--network", "p2p", "busybox", "sleep", "300")
	if ip := s.ipOf(docker, "pp", "p2p"); ip != "10.84.0.1" {
		t.Errorf("pp on p2p: %s", ip)
	}
	if out := s.must(docker, "exec", "pp", "busybox", "ping", "-c", "1", "-W", "3", "10.84.0.0").stdout; !strings.Contains(out, "1 packets received") {
		t.Errorf("pp to its gateway: %s", out)
	}
	if r := s.run(docker, "run", "--rm", "--network", "p2p", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "no available IPv4 addresses") {
		t.Errorf("a second container on a /31: %s", r)
	}
	s.must(docker, "rm", "-f", "r1", "r2", "r3", "pp")
}

// TestFidelityNetworkIPv6: --ipv6 networks are dual stack: containers get
// an IPv6 address beside their IPv4 one, reach each other by it, and the
// name server answers AAAA; an IPv6 subnet is taken as Docker takes it.
func TestFidelityNetworkIPv6(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "network", "create", "--ipv6", "--subnet", "10.85.0.0/24", "--subnet", "fd00:85::/64", "dual")
	in := s.must(docker, "network", "inspect", "-f", "{{.EnableIPv6}}{{range .IPAM.Config}} {{.Subnet}} {{.Gateway}}{{end}}", "dual").stdout
	if in != "true 10.85.0.0/24 10.85.0.1 fd00:85::/64 fd00:85::1\n" {
		t.Errorf("inspect dual: %q", in)
	}
	s.must(docker, "run", "-d", "--name", "v6srv", "--network", "dual", "busybox", "sleep", "300")
	ip6 := strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.NetworkSettings.Networks.dual.GlobalIPv6Address}}/{{.NetworkSettings.Networks.dual.GlobalIPv6PrefixLen}} {{.NetworkSettings.Networks.dual.IPv6Gateway}}", "v6srv").stdout)
	if ip6 != "fd00:85::2/64 fd00:85::1" {
		t.Errorf("v6srv's IPv6 settings: %q", ip6)
	}
	if out := s.must(docker, "exec", "v6srv", "ip", "-o", "-6", "addr").stdout; !strings.Contains(out, "fd00:85::2/64") {
		t.Errorf("v6srv's addresses:\n%s", out)
	}
	out := s.must(docker, "run", "--rm", "--network", "dual", "busybox", "sh", "-c",
		"ping -6 -c 1 -W 3 fd00:85::2 && nslookup -type=AAAA v6srv").stdout
	if !strings.Contains(out, "1 packets received") || !strings.Contains(out, "fd00:85::2") {
		t.Errorf("v6srv by its IPv6 address and its AAAA record:\n%s", out)
	}
	// --ip6 asks for an address, as --ip does.
	s.must(docker, "run", "-d", "--name", "v6fixed", "--network", "dual", "--ip6", "fd00:85::99", "busybox", "sleep", "300")
	if got := s.must(docker, "inspect", "-f", "{{.NetworkSettings.Networks.dual.GlobalIPv6Address}}", "v6fixed").stdout; got != "fd00:85::99\n" {
		t.Errorf("--ip6 fd00:85::99 gave %q", got)
	}
	if r := s.run(docker, "run", "--rm", "--network", "dual", "--ip6", "fd00:85::99", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "fd00:85::99") {
		t.Errorf("a taken --ip6: %s", r)
	}
	// Without a subnet of its own, an IPv6 network takes a unique local
	// /64 (fd00::/8), as Docker's default pools give.
	s.must(docker, "network", "create", "--ipv6", "auto6")
	if sub := s.must(docker, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", "auto6").stdout; !strings.Contains(sub, " fd") || !strings.Contains(sub, "::/64") {
		t.Errorf("auto6's subnets: %q", sub)
	}
	// IPv6-only networks are refused clearly, not made dual-stack.
	if r := s.run(docker, "network", "create", "--ipv4=false", "--ipv6", "v6only"); r.code == 0 || !strings.Contains(r.stderr, "not implemented") {
		t.Errorf("an IPv6-only network: %s", r)
	}
	// An IPv6 subnet without --ipv6 is not an error (Docker ignores it).
	if r := s.run(docker, "network", "create", "--subnet", "fd00:86::/64", "v6off"); r.code != 0 || strings.Contains(r.stderr, "<nil>") {
		t.Errorf("IPv6 subnet without --ipv6: %s", r)
	}
	s.must(docker, "rm", "-f", "v6srv", "v6fixed")
}

// TestFidelityNetworkNames: how Docker finds and names networks — full ID
// before name before ID prefix, names with spaces, the list at
// "/networks/", duplicate names refused at every API version, and removal
// held back only by running containers.
func TestFidelityNetworkNames(t *testing.T) {
	s, docker := containerSession(t)
	id := strings.TrimSpace(s.must(docker, "network", "create", "first").stdout)
	// A network named like first's ID prefix: the name wins over the
	// prefix, the full ID over both.
	s.must(docker, "network", "create", id[:12])
	if name := s.must(docker, "network", "inspect", "-f", "{{.Name}}", id[:12]).stdout; name != id[:12]+"\n" {
		t.Errorf("inspect %s found %q, not the network of that name", id[:12], name)
	}
	// Even a network named like first's full ID does not hide first.
	s.must(docker, "network", "create", id)
	if name := s.must(docker, "network", "inspect", "-f", "{{.Name}}", id).stdout; name != "first\n" {
		t.Errorf("inspect by full ID found %q", name)
	}
	s.must(docker, "network", "create", "my net")
	if name := s.must(docker, "network", "inspect", "-f", "{{.Name}}", "my net").stdout; name != "my net\n" {
		t.Errorf("network with a space: %q", name)
	}

	code, body := s.apiCall(t, "GET", "/v1.51/networks/", "", "")
	var list []struct{ Name string }
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) < 4 {
		t.Errorf("GET /networks/: %d %s", code, body)
	}
	// CheckDuplicate=false is a field old clients send; Docker 28 refuses
	// the duplicate all the same.
	req := `{"Name":"dup","CheckDuplicate":false}`
	if code, body := s.apiCall(t, "POST", "/v1.43/networks/create", "application/json", req); code != 201 {
		t.Errorf("create dup at 1.43: %d %s", code, body)
	}
	if code, body := s.apiCall(t, "POST", "/v1.43/networks/create", "application/json", req); code != 409 || !strings.Contains(body, "network with name dup already exists") {
		t.Errorf("second dup at 1.43: %d %s", code, body)
	}

	// A stopped container does not hold its network; a running one does.
	s.must(docker, "network", "create", "held")
	s.must(docker, "run", "-d", "--name", "holder", "--network", "held", "busybox", "sleep", "300")
	if r := s.run(docker, "network", "rm", "held"); r.code == 0 || !strings.Contains(r.stderr, "network held has active endpoints (holder)") {
		t.Errorf("rm of a network a running container uses: %s", r)
	}
	s.must(docker, "stop", "-t", "0", "holder")
	s.must(docker, "network", "rm", "held")
	if r := s.run(docker, "start", "holder"); r.code == 0 || !strings.Contains(r.stderr, "network held not found") {
		t.Errorf("start after its network went: %s", r)
	}
	s.must(docker, "rm", "-f", "holder")
}

// TestFidelityNetworkDNS: on a user-defined network the name server
// answers a container's hostname, and a link's alias to the container
// that made the link (and to no other), as Docker's embedded DNS does.
func TestFidelityNetworkDNS(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "network", "create", "dnsnet")
	s.must(docker, "run", "-d", "--name", "srv", "--hostname", "srvhost", "--network", "dnsnet", "busybox", "sleep", "300")
	srvIP := s.ipOf(docker, "srv", "dnsnet")
	// nslookup asks the name server, never /etc/hosts.
	if out := s.must(docker, "run", "--rm", "--network", "dnsnet", "busybox", "nslookup", "srvhost").stdout; !strings.Contains(out, "Address: "+srvIP) {
		t.Errorf("srv by its hostname (%s):\n%s", srvIP, out)
	}
	out := s.must(docker, "run", "--rm", "--network", "dnsnet", "--hostname", "myself", "busybox", "sh", "-c",
		"nslookup myself; ip -o -4 addr show eth0").stdout
	self := ""
	if i := strings.Index(out, "inet "); i >= 0 {
		self = strings.Split(out[i+5:], "/")[0]
	}
	if self == "" || !strings.Contains(out, "Address: "+self+"\n") {
		t.Errorf("a container's own hostname:\n%s", out)
	}
	if out := s.must(docker, "run", "--rm", "--network", "dnsnet", "--link", "srv:dbalias", "busybox", "nslookup", "dbalias").stdout; !strings.Contains(out, "Address: "+srvIP) {
		t.Errorf("a link's alias (%s):\n%s", srvIP, out)
	}
	if r := s.run(docker, "run", "--rm", "--network", "dnsnet", "busybox", "nslookup", "dbalias"); strings.Contains(r.stdout, "Address: "+srvIP) {
		t.Errorf("another container's link alias answered:\n%s", r.stdout)
	}
	s.must(docker, "rm", "-f", "srv")
}

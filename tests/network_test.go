package tests

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freePort is a TCP port free on the host's loopback now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpGet fetches a URL from the test (the host side), retrying briefly
// while the server in the container starts.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	var last error
	for i := 0; i < 50; i++ {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return string(b)
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

// udpEcho sends a datagram to addr and returns the answer, retrying
// while the server starts.
func udpEcho(t *testing.T, addr, msg string) string {
	t.Helper()
	c, err := net.Dial("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1500)
	for i := 0; i < 50; i++ {
		c.Write([]byte(msg))
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, err := c.Read(buf); err == nil {
			return string(buf[:n])
		}
	}
	t.Fatalf("no UDP answer from %s", addr)
	return ""
}

// hostLoopbackServer serves body over HTTP on the host's 127.0.0.1 until
// the test ends, and returns its port.
func hostLoopbackServer(t *testing.T, body string) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// killDaemon kills lodged with SIGKILL and waits until its lock is free:
// a killed process's leader can be reaped before its last thread has
// closed its files.
func (s *session) killDaemon() {
	s.t.Helper()
	pid := s.pid()
	syscall.Kill(pid, syscall.SIGKILL)
	waitGone(s.t, []int{pid}, 10*time.Second)
	waitFor(s.t, 10*time.Second, func() bool { return s.run("lodge", "daemon", "status").code != 0 })
}

// ipOf is a running container's address on a network.
func (s *session) ipOf(docker, ctr, network string) string {
	s.t.Helper()
	ip := strings.TrimSpace(s.must(docker, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+network+"\").IPAddress}}", ctr).stdout)
	if net.ParseIP(ip) == nil {
		s.t.Fatalf("%s has no address on %s: %q", ctr, network, ip)
	}
	return ip
}

// TestBridgeNetwork: containers on the default bridge get an address,
// reach each other, and reach a server on the host's loopback through the
// uplink (slirp4netns maps 10.0.2.2 to the host's 127.0.0.1).
func TestBridgeNetwork(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "run", "-d", "--name", "web", "busybox", "httpd", "-f", "-p", "8000", "-h", "/etc")
	ip := s.ipOf(docker, "web", "bridge")
	if !strings.HasPrefix(ip, "172.17.") {
		t.Errorf("default bridge address %s, want 172.17.0.0/16", ip)
	}
	if gw := s.must(docker, "inspect", "-f", "{{.NetworkSettings.Networks.bridge.Gateway}}", "web").stdout; gw != "172.17.0.1\n" {
		t.Errorf("gateway: %q", gw)
	}
	out := s.must(docker, "run", "--rm", "busybox", "busybox", "wget", "-qO-", "http://"+ip+":8000/hostname").stdout
	if id := s.must(docker, "inspect", "-f", "{{.Config.Hostname}}", "web").stdout; out != id {
		t.Errorf("container to container over the bridge: %q, want %q", out, id)
	}
	s.must(docker, "run", "--rm", "busybox", "busybox", "ping", "-c", "1", "-W", "5", ip)
	if out := s.must(docker, "run", "--rm", "--link", "web:site", "busybox", "busybox", "wget", "-qO-", "http://site:8000/hostname").stdout; out == "" {
		t.Errorf("--link web:site gave no way to web by its alias")
	}
	s.must(docker, "run", "-d", "--name", "sleeper", "busybox", "sleep", "60")
	other := s.ipOf(docker, "sleeper", "bridge")
	if other == ip {
		t.Errorf("two containers share %s", ip)
	}

	// Outbound: a server on the host's loopback, through the uplink.
	url := fmt.Sprintf("http://10.0.2.2:%d/", hostLoopbackServer(t, "from the host\n")) // slirp4netns's address for it
	if out := s.must(docker, "run", "--rm", "busybox", "busybox", "wget", "-qO-", url).stdout; out != "from the host\n" {
		t.Errorf("container to the host's loopback: %q", out)
	}

	// --network none keeps loopback only; --network container: shares.
	if out := s.must(docker, "run", "--rm", "--network", "none", "busybox", "ip", "-o", "link").stdout; strings.Contains(out, "eth0") || !strings.Contains(out, "lo:") {
		t.Errorf("--network none: %q", out)
	}
	if out := s.must(docker, "run", "--rm", "--network", "container:web", "busybox", "ip", "-o", "addr").stdout; !strings.Contains(out, ip+"/16") {
		t.Errorf("--network container:web does not share web's address: %q", out)
	}
	// The generated files.
	r := s.must(docker, "run", "--rm", "--add-host", "h:10.1.2.3", "--dns", "10.0.2.3", "--dns-search", "example.test", "--hostname", "box",
		"busybox", "sh", "-c", "cat /etc/hosts /etc/resolv.conf; hostname")
	for _, want := range []string{"10.1.2.3\th\n", "\tbox\n", "nameserver 10.0.2.3\n", "search example.test\n", "box\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("generated files lack %q:\n%s", want, r.stdout)
		}
	}

	// Stopping frees the address: the sandbox record and the pinned
	// namespace go.
	s.must(docker, "rm", "-f", "web")
	sbs, _ := os.ReadDir(filepath.Join(s.data, "lodge", "networks", "sandboxes"))
	if len(sbs) != 1 {
		t.Errorf("sandboxes after removing web: %d, want 1 (the sleeper)", len(sbs))
	}
	s.must(docker, "rm", "-f", "sleeper")
}

// udpEchoBinary builds the static UDP echo server the tests bind-mount
// into a container.
func udpEchoBinary(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lodge-udpecho-") // the test user must reach it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "udpecho")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/udpecho")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building udpecho: %v\n%s", err, out)
	}
	return bin
}

// TestPublishedPorts: -p answers on the host over TCP and UDP, with host
// IP selection, ranges and -P; ports go with the container's stop, come
// back with its start and survive a restart of lodged; errors are clear.
func TestPublishedPorts(t *testing.T) {
	s, docker := containerSession(t)
	echo := udpEchoBinary(t)
	tcp, udp := freePort(t), freePort(t)
	s.must(docker, "run", "-d", "--name", "web",
		"-p", fmt.Sprintf("127.0.0.1:%d:80", tcp), "-p", fmt.Sprintf("127.0.0.1:%d:5353/udp", udp),
		"-v", echo+":/udpecho:ro",
		"busybox", "sh", "-c", "/udpecho 5353 & exec httpd -f -p 80 -h /etc")
	base := fmt.Sprintf("http://127.0.0.1:%d/", tcp)
	id := strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.Config.Hostname}}", "web").stdout)
	if got := httpGet(t, base+"hostname"); got != id+"\n" {
		t.Errorf("GET through the published port: %q", got)
	}
	if got := udpEcho(t, fmt.Sprintf("127.0.0.1:%d", udp), "ping"); got != "ping" {
		t.Errorf("UDP echo: %q", got)
	}
	port := s.must(docker, "port", "web").stdout
	for _, want := range []string{fmt.Sprintf("80/tcp -> 127.0.0.1:%d", tcp), fmt.Sprintf("5353/udp -> 127.0.0.1:%d", udp)} {
		if !strings.Contains(port, want) {
			t.Errorf("docker port lacks %q:\n%s", want, port)
		}
	}
	if ps := s.must(docker, "ps", "--format", "{{.Ports}}").stdout; !strings.Contains(ps, fmt.Sprintf("127.0.0.1:%d->80/tcp", tcp)) {
		t.Errorf("docker ps PORTS: %q", ps)
	}

	// A port in use, a privileged port, a bad spec.
	r := s.run(docker, "run", "--rm", "-p", fmt.Sprintf("127.0.0.1:%d:80", tcp), "busybox", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "already allocated") {
		t.Errorf("port in use: %s", r)
	}
	r = s.run(docker, "run", "--rm", "-p", "80:80", "busybox", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "ip_unprivileged_port_start") {
		t.Errorf("privileged port: %s", r)
	}

	// Stop frees it, start restores it.
	s.must(docker, "stop", "-t", "1", "web")
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", tcp), time.Second); err == nil {
		c.Close()
		t.Errorf("port %d still answers after stop", tcp)
	}
	s.must(docker, "start", "web")
	httpGet(t, base+"hostname")

	// A restart of lodged (kill -9) keeps the port answering.
	s.killDaemon()
	s.start()
	httpGet(t, base+"hostname")
	s.must(docker, "restart", "-t", "1", "web")
	httpGet(t, base+"hostname")

	// After the restart no address is handed out twice, and a server in
	// the container sees the bridge's gateway as the client's address
	// (rootlesskit's port driver connects from lodged's namespace). The
	// MAC address can be chosen.
	cgi := freePort(t)
	s.must(docker, "run", "-d", "--name", "cgi", "--mac-address", "02:42:00:00:00:42", "-p", fmt.Sprintf("127.0.0.1:%d:80", cgi), "busybox", "sh", "-c",
		`mkdir -p /www/cgi-bin && printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho $REMOTE_ADDR\n' > /www/cgi-bin/ip && chmod +x /www/cgi-bin/ip && exec httpd -f -p 80 -h /www`)
	if a, b := s.ipOf(docker, "web", "bridge"), s.ipOf(docker, "cgi", "bridge"); a == b {
		t.Errorf("web and cgi share %s after a restart of lodged", a)
	}
	if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/cgi-bin/ip", cgi)); !strings.Contains(got, "172.17.0.1") {
		t.Errorf("the client's address in the container: %q, want the gateway", got)
	}
	if mac := s.must(docker, "exec", "cgi", "ip", "link", "show", "eth0").stdout; !strings.Contains(mac, "link/ether 02:42:00:00:00:42 ") {
		t.Errorf("--mac-address: %q", mac)
	}
	s.must(docker, "rm", "-f", "cgi")

	// Ranges, and -P for the image's EXPOSEd ports on random host ports.
	lo := freePort(t)
	r = s.run(docker, "run", "-d", "--name", "ranged", "-p", fmt.Sprintf("127.0.0.1:%d-%d:80-81", lo, lo+1), "busybox", "httpd", "-f", "-p", "81", "-h", "/etc")
	if r.code == 0 {
		httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/hostname", lo+1))
	} else if !strings.Contains(r.stderr, "already allocated") { // lo+1 may be taken by someone else
		t.Errorf("range: %s", r)
	}
	s.must(docker, "run", "-d", "--name", "exposed", "--expose", "80", "-P", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	hp := strings.TrimSpace(s.must(docker, "port", "exposed", "80/tcp").stdout)
	if !strings.Contains(hp, ":") {
		t.Fatalf("-P gave no host port: %q", hp)
	}
	hp = hp[strings.LastIndex(strings.Split(hp, "\n")[0], ":")+1:]
	httpGet(t, "http://127.0.0.1:"+strings.Split(hp, "\n")[0]+"/hostname")
	s.must(docker, "rm", "-f", "web", "exposed", "ranged")
}

// TestUserNetworks: docker network create/ls/inspect/connect/disconnect/
// rm/prune, names and aliases resolved by the embedded name server, and
// isolation between networks.
func TestUserNetworks(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "network", "create", "appnet")
	s.must(docker, "network", "create", "--subnet", "10.77.0.0/24", "other")
	if r := s.run(docker, "network", "create", "--subnet", "10.77.0.128/25", "clash"); r.code == 0 || !strings.Contains(r.stderr, "overlaps") {
		t.Errorf("overlapping subnet: %s", r)
	}
	if r := s.run(docker, "network", "create", "appnet"); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("duplicate name: %s", r)
	}
	if r := s.run(docker, "run", "--rm", "--network", "nope", "busybox", "true"); r.code != 125 || !strings.Contains(r.stderr, "network nope not found") {
		t.Errorf("unknown network: %s", r)
	}
	ls := s.must(docker, "network", "ls", "--format", "{{.Name}} {{.Driver}}").stdout
	for _, want := range []string{"appnet bridge", "other bridge", "bridge bridge", "host host", "none null"} {
		if !strings.Contains(ls, want+"\n") {
			t.Errorf("network ls lacks %q:\n%s", want, ls)
		}
	}
	if sub := s.must(docker, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}", "other").stdout; sub != "10.77.0.0/24 10.77.0.1\n" {
		t.Errorf("inspect other: %q", sub)
	}

	s.must(docker, "run", "-d", "--name", "db", "--network", "appnet", "--network-alias", "database", "busybox", "nc", "-ll", "-p", "5432", "-e", "cat")
	dbIP := s.ipOf(docker, "db", "appnet")
	if ps := s.must(docker, "ps", "-a", "--filter", "network=appnet", "--format", "{{.Names}}").stdout; ps != "db\n" {
		t.Errorf("ps --filter network=appnet: %q", ps)
	}
	out := s.must(docker, "run", "--rm", "--network", "appnet", "busybox", "sh", "-c",
		"echo hi | nc db 5432; nslookup database; nslookup db").stdout
	if !strings.HasPrefix(out, "hi\n") || strings.Count(out, "Address: "+dbIP) != 2 {
		t.Errorf("by name and alias on appnet (db is %s):\n%s", dbIP, out)
	}
	if c := s.must(docker, "network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}", "appnet").stdout; c != "db "+dbIP+"/16\n" {
		t.Errorf("appnet's containers: %q", c)
	}
	// Isolation: from other, db's appnet address does not answer.
	if r := s.run(docker, "run", "--rm", "--network", "other", "busybox", "busybox", "ping", "-c", "1", "-W", "1", dbIP); r.code == 0 {
		t.Errorf("a container on other reached appnet's %s", dbIP)
	}
	// connect gives db an address on other, reachable by name there.
	s.must(docker, "network", "connect", "other", "db")
	otherIP := s.ipOf(docker, "db", "other")
	if !strings.HasPrefix(otherIP, "10.77.0.") {
		t.Errorf("db on other: %s", otherIP)
	}
	if out := s.must(docker, "run", "--rm", "--network", "other", "busybox", "sh", "-c", "echo there | nc db 5432").stdout; out != "there\n" {
		t.Errorf("db by name on other: %q", out)
	}
	s.must(docker, "network", "disconnect", "other", "db")
	if out := s.must(docker, "exec", "db", "ip", "-o", "-4", "addr").stdout; strings.Contains(out, otherIP) {
		t.Errorf("disconnect left %s in db:\n%s", otherIP, out)
	}
	// A restarted lodged serves the names again.
	s.killDaemon()
	s.start()
	if out := s.must(docker, "run", "--rm", "--network", "appnet", "busybox", "sh", "-c", "echo again | nc database 5432").stdout; out != "again\n" {
		t.Errorf("by alias after a restart of lodged: %q", out)
	}
	if r := s.run(docker, "network", "rm", "appnet"); r.code == 0 || !strings.Contains(r.stderr, "active endpoints") {
		t.Errorf("rm of a network in use: %s", r)
	}
	if r := s.run(docker, "network", "rm", "bridge"); r.code == 0 || !strings.Contains(r.stderr, "pre-defined") {
		t.Errorf("rm bridge: %s", r)
	}
	s.must(docker, "network", "rm", "other")
	s.must(docker, "rm", "-f", "db")
	if out := s.must(docker, "network", "prune", "-f").stdout; !strings.Contains(out, "appnet") {
		t.Errorf("prune: %q", out)
	}
	if ls := s.must(docker, "network", "ls", "-q").stdout; strings.Count(ls, "\n") != 3 {
		t.Errorf("after prune, want bridge, host and none:\n%s", ls)
	}

	// An internal network keeps its containers to itself: no way to the
	// host's loopback.
	s.must(docker, "network", "create", "--internal", "inside")
	hostPort := strconv.Itoa(hostLoopbackServer(t, "host\n"))
	if r := s.run(docker, "run", "--rm", "--network", "inside", "busybox", "nc", "-w", "3", "10.0.2.2", hostPort); r.code == 0 {
		t.Errorf("a container on an internal network reached the host: %s", r)
	}
	if r := s.run(docker, "run", "--rm", "busybox", "busybox", "wget", "-qO-", "http://10.0.2.2:"+hostPort+"/"); r.stdout != "host\n" {
		t.Errorf("the default bridge lost its way out beside an internal network: %s", r)
	}
	s.must(docker, "network", "rm", "inside")

	// The same through lodge's own CLI.
	s.must("lodge", "network", "create", "--subnet", "10.78.0.0/24", "lnet")
	if ls := s.must("lodge", "network", "ls").stdout; !strings.Contains(ls, "lnet") {
		t.Errorf("lodge network ls:\n%s", ls)
	}
	port := freePort(t)
	s.must("lodge", "run", "-d", "--name", "lweb", "--network", "lnet", "--network-alias", "www", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/hostname", port))
	if p := s.must("lodge", "port", "lweb").stdout; p != fmt.Sprintf("80/tcp -> 127.0.0.1:%d\n", port) {
		t.Errorf("lodge port: %q", p)
	}
	if out := s.must("lodge", "run", "--rm", "--network", "lnet", "busybox", "busybox", "wget", "-qO-", "http://www/hostname").stdout; out == "" {
		t.Errorf("alias www on lnet through lodge run")
	}
	if in := s.must("lodge", "network", "inspect", "-f", "{{.Name}}", "lnet").stdout; in != "lnet\n" {
		t.Errorf("lodge network inspect: %q", in)
	}
	s.must("lodge", "network", "disconnect", "lnet", "lweb")
	s.must("lodge", "network", "connect", "lnet", "lweb")
	s.must("lodge", "rm", "-f", "lweb")
	s.must("lodge", "network", "rm", "lnet")
	s.must("lodge", "network", "prune", "-f")
}

// TestBridgeOnEveryUplink: the bridge and published ports work with every
// network driver and in single-id mode, and the host's loopback answers
// where the uplink maps it: 10.0.2.2 with slirp4netns (the default here),
// 10.0.2.1 with gvisor-tap-vsock, which --add-host NAME:host-gateway
// names either way. With no uplink there is no way out.
func TestBridgeOnEveryUplink(t *testing.T) {
	needDocker(t)
	hostPort := hostLoopbackServer(t, "host\n")
	for _, tc := range []struct{ name, user, driver, hostLoopback string }{
		{"gvisor-tap-vsock", "LODGE_TEST_USER", "gvisor-tap-vsock", "10.0.2.1"},
		{"none", "LODGE_TEST_USER", "none", ""},
		{"single-id", "LODGE_TEST_NOSUB_USER", "auto", "10.0.2.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docker := needDocker(t)
			s := newSession(t, lookupUser(t, tc.user))
			s.start("--network-driver", tc.driver)
			s.loadBusybox(docker)
			port := freePort(t)
			s.must(docker, "run", "-d", "--name", "web", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
			ip := s.ipOf(docker, "web", "bridge")
			id := s.must(docker, "inspect", "-f", "{{.Config.Hostname}}", "web").stdout
			if out := s.must(docker, "run", "--rm", "busybox", "busybox", "wget", "-qO-", "http://"+ip+"/hostname").stdout; out != id {
				t.Errorf("over the bridge: %q", out)
			}
			if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/hostname", port)); got != id {
				t.Errorf("published port: %q", got)
			}
			url := fmt.Sprintf("http://hostgw:%d/", hostPort)
			r := s.run(docker, "run", "--rm", "--add-host", "hostgw:host-gateway", "busybox", "sh", "-c", "busybox grep hostgw /etc/hosts; busybox wget -qO- "+url)
			switch tc.hostLoopback {
			case "":
				if r.code == 0 {
					t.Errorf("reached the host with no uplink: %s", r)
				}
			default:
				if r.stdout != tc.hostLoopback+"\thostgw\nhost\n" {
					t.Errorf("the host's loopback at %s: %s", tc.hostLoopback, r)
				}
			}
			s.must(docker, "rm", "-f", "web")
		})
	}
}

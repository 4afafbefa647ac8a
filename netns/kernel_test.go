package netns

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"

	"github.com/lodge-containers/lodge/internal/nstest"
)

func TestMain(m *testing.M) {
	nstest.Reexec()
	os.Exit(m.Run())
}

func cidr(t *testing.T, s string) net.IPNet {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	n.IP = ip
	return *n
}

func TestBridgeConnectsContainers(t *testing.T) {
	nstest.RequireRootless(t)
	dir := t.TempDir()
	up := filepath.Join(dir, "uplink")
	if err := Pin(up); err != nil {
		t.Fatal(err)
	}
	defer Unpin(up)
	// An uplink with a large MTU and the default route, as the drivers
	// make it: the links to containers take its MTU.
	err := Do(up, func() error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0", MTU: 9000}, PeerName: "up1"}); err != nil {
			return err
		}
		l, err := netlink.LinkByName("up0")
		if err != nil {
			return err
		}
		a := cidr(t, "10.98.0.1/24")
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &a}); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP("10.98.0.2")})
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &Fabric{UplinkNS: up}
	defer f.Close()
	gw := cidr(t, "10.99.0.1/24")
	if err := f.EnsureBridge(Bridge{Name: "lodge9", Gateway: gw}); err != nil {
		t.Fatal(err)
	}
	if err := f.EnsureBridge(Bridge{Name: "lodge9", Gateway: gw}); err != nil {
		t.Fatalf("second EnsureBridge: %v", err)
	}
	if err := f.ApplyRules([]RoutedNet{{Bridge: "lodge9", Subnet: cidr(t, "10.99.0.0/24")}}); err != nil {
		t.Fatal(err)
	}
	var nss []string
	for i, addr := range []string{"10.99.0.2/24", "10.99.0.3/24"} {
		p := filepath.Join(dir, fmt.Sprint("c", i))
		if err := Pin(p); err != nil {
			t.Fatal(err)
		}
		defer Unpin(p)
		err := f.Attach(Endpoint{Bridge: "lodge9", HostIf: fmt.Sprint("vethtest", i), NSPath: p, IfName: "eth0",
			Addr: cidr(t, addr), Gateway: gw.IP, DefaultRoute: true})
		if err != nil {
			t.Fatal(err)
		}
		nss = append(nss, p)
	}
	for _, p := range nss {
		var mtu int
		Do(p, func() error {
			l, err := netlink.LinkByName("eth0")
			if err == nil {
				mtu = l.Attrs().MTU
			}
			return err
		})
		if mtu != 9000 {
			t.Errorf("container link MTU %d, want the uplink's 9000", mtu)
		}
	}
	var l net.Listener
	if err := Do(nss[0], func() (err error) { l, err = net.Listen("tcp", "10.99.0.2:7000"); return }); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	var got []byte
	err = Do(nss[1], func() error {
		c, err := net.Dial("tcp", "10.99.0.2:7000")
		if err != nil {
			return err
		}
		defer c.Close()
		got, err = io.ReadAll(c)
		return err
	})
	if err != nil || string(got) != "hello" {
		t.Fatalf("container to container over the bridge: %q %v", got, err)
	}
	// A start after lodged died mid-attach: the host end vethtest0 is
	// still there, its namespace (c0) still pinned. The new endpoint of
	// that name replaces it and works; c0 loses its link with it.
	p := filepath.Join(dir, "c2")
	if err := Pin(p); err != nil {
		t.Fatal(err)
	}
	defer Unpin(p)
	if err := f.Attach(Endpoint{Bridge: "lodge9", HostIf: "vethtest0", NSPath: p, IfName: "eth0",
		Addr: cidr(t, "10.99.0.4/24"), Gateway: gw.IP, DefaultRoute: true}); err != nil {
		t.Fatalf("attach over a leftover host end: %v", err)
	}
	if err := Do(nss[0], func() error { _, err := netlink.LinkByName("eth0"); return err }); err == nil {
		t.Error("the replaced endpoint's container end is still in its namespace")
	}
	var l2 net.Listener
	if err := Do(p, func() (err error) { l2, err = net.Listen("tcp", "10.99.0.4:7001"); return }); err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	go func() {
		c, err := l2.Accept()
		if err == nil {
			c.Write([]byte("again"))
			c.Close()
		}
	}()
	err = Do(nss[1], func() error {
		c, err := net.DialTimeout("tcp", "10.99.0.4:7001", 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		got, err = io.ReadAll(c)
		return err
	})
	if err != nil || string(got) != "again" {
		t.Fatalf("to the endpoint that replaced a leftover: %q %v", got, err)
	}
	// A spare: linked ahead (Prepare), given its address and MAC at a
	// start (Configure), then reached like any other.
	p3 := filepath.Join(dir, "c3")
	if err := Pin(p3); err != nil {
		t.Fatal(err)
	}
	defer Unpin(p3)
	spare := Endpoint{Bridge: "lodge9", HostIf: "vethtest3", NSPath: p3, IfName: "eth0"}
	if err := f.Prepare(spare); err != nil {
		t.Fatal(err)
	}
	spare.Addr, spare.Gateway, spare.DefaultRoute = cidr(t, "10.99.0.5/24"), gw.IP, true
	spare.MAC = net.HardwareAddr{0x02, 0x42, 10, 99, 0, 5}
	if err := f.Configure(spare); err != nil {
		t.Fatal(err)
	}
	var mac string
	if err := Do(p3, func() error {
		l, err := netlink.LinkByName("eth0")
		if err == nil {
			mac = l.Attrs().HardwareAddr.String()
		}
		return err
	}); err != nil || mac != "02:42:0a:63:00:05" {
		t.Errorf("the configured spare's eth0: MAC %q, %v", mac, err)
	}
	var l3 net.Listener
	if err := Do(p3, func() (err error) { l3, err = net.Listen("tcp", "10.99.0.5:7002"); return }); err != nil {
		t.Fatal(err)
	}
	defer l3.Close()
	go func() {
		c, err := l3.Accept()
		if err == nil {
			c.Write([]byte("spare"))
			c.Close()
		}
	}()
	err = Do(nss[1], func() error {
		c, err := net.DialTimeout("tcp", "10.99.0.5:7002", 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		got, err = io.ReadAll(c)
		return err
	})
	if err != nil || string(got) != "spare" {
		t.Fatalf("to a configured spare: %q %v", got, err)
	}
	if err := f.Detach("vethtest1"); err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteBridge("lodge9"); err != nil {
		t.Fatal(err)
	}
}

// TestPinReplacesLeftover: a pin left on a container's path (lodged
// killed between the pin and the sandbox record that names it) does not
// stop the next start: Pin puts a new, empty namespace there.
func TestPinReplacesLeftover(t *testing.T) {
	nstest.RequireRootless(t)
	p := filepath.Join(t.TempDir(), "c")
	if err := Pin(p); err != nil {
		t.Fatal(err)
	}
	defer Unpin(p)
	if err := Do(p, func() error {
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "old0"}, PeerName: "old1"})
	}); err != nil {
		t.Fatal(err)
	}
	if err := Pin(p); err != nil {
		t.Fatalf("pin over a leftover: %v", err)
	}
	if err := Do(p, func() error { _, err := netlink.LinkByName("old0"); return err }); err == nil {
		t.Error("the path still holds the leftover namespace")
	}
}

// TestBindRefusesNoNamespace: Bind puts a pinned namespace on a second
// path, and refuses a source that holds none (a slot unpinned under it),
// which the kernel would bind as a plain file for setns to fail on later.
func TestBindRefusesNoNamespace(t *testing.T) {
	nstest.RequireRootless(t)
	dir := t.TempDir()
	from, to := filepath.Join(dir, "spare"), filepath.Join(dir, "c")
	if err := Pin(from); err != nil {
		t.Fatal(err)
	}
	if err := Bind(from, to); err != nil {
		t.Fatalf("bind of a pinned namespace: %v", err)
	}
	if err := Do(to, func() error { return nil }); err != nil {
		t.Errorf("the bound path holds no namespace: %v", err)
	}
	if err := Unpin(to); err != nil {
		t.Fatal(err)
	}
	if err := Unpin(from); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(from, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Bind(from, to); err == nil {
		_ = Unpin(to)
		t.Fatal("a plain file was bound as a network namespace")
	}
	if _, err := os.Stat(to); !os.IsNotExist(err) {
		t.Errorf("a refused bind left %s: %v", to, err)
	}
}

func TestResolver(t *testing.T) {
	nstest.RequireRootless(t)
	up := filepath.Join(t.TempDir(), "uplink")
	if err := Pin(up); err != nil {
		t.Fatal(err)
	}
	defer Unpin(up)
	f := &Fabric{UplinkNS: up}
	defer f.Close()
	gw := cidr(t, "10.97.0.1/24")
	if err := f.EnsureBridge(Bridge{Name: "lodge8", Gateway: gw}); err != nil {
		t.Fatal(err)
	}
	// The upstream answers from this (the "host's") namespace.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upstream := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.IPv4(192, 0, 2, 7)})
		w.WriteMsg(m)
	})}
	go upstream.ActivateAndServe()
	defer upstream.Shutdown()

	r := NewResolver(up)
	r.upstreams = func() []string { return []string{pc.LocalAddr().String()} }
	r.SetLookup(func(g, _ net.IP, name string) []net.IP {
		if g.Equal(gw.IP) && name == "db" {
			return []net.IP{net.IPv4(10, 97, 0, 5)}
		}
		return nil
	})
	if err := r.Serve(gw.IP); err != nil {
		t.Fatal(err)
	}
	defer r.Stop(gw.IP)
	for name, want := range map[string]string{"db.": "10.97.0.5", "DB.": "10.97.0.5", "example.test.": "192.0.2.7"} {
		var got *dns.Msg
		err := Do(up, func() (err error) {
			q := new(dns.Msg)
			q.SetQuestion(name, dns.TypeA)
			got, _, err = (&dns.Client{Timeout: 5 * time.Second}).Exchange(q, "10.97.0.1:53")
			return err
		})
		if err != nil || len(got.Answer) != 1 || got.Answer[0].(*dns.A).A.String() != want {
			t.Errorf("%s: %v %v, want %s", name, got, err, want)
		}
	}
}

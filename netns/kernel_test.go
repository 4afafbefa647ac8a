package netns

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

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
	f := &Fabric{UplinkNS: up}
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
	err := Do(nss[1], func() error {
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
	if err := f.Detach("vethtest1"); err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteBridge("lodge9"); err != nil {
		t.Fatal(err)
	}
}

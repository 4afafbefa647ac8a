package daemon

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// TestNetSpecCopies: the network service gets copies of a container's
// values, so a later change to the record (a connect, a rename, an edit
// of its ports) cannot reach into what the service holds.
func TestNetSpecCopies(t *testing.T) {
	p := network.MustParsePort("80/tcp")
	c := &Container{ID: strings.Repeat("c", 64), Name: "web",
		Config:     &container.Config{Hostname: "h", ExposedPorts: network.PortSet{p: {}}},
		HostConfig: &container.HostConfig{NetworkMode: "appnet", Links: []string{"db:data"}, PortBindings: network.PortMap{p: {{HostPort: "8080"}}}},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			"appnet": {Aliases: []string{"www"}},
		}},
	}
	sp := netSpec(c)
	if sp.ID != c.ID || sp.Name != "web" || sp.Hostname != "h" || sp.Mode != "appnet" || sp.Links[0] != "db:data" ||
		sp.PortBindings[p][0].HostPort != "8080" || sp.Endpoints["appnet"].Aliases[0] != "www" {
		t.Fatalf("spec: %+v", sp)
	}
	c.HostConfig.Links[0] = "other:x"
	c.HostConfig.PortBindings[p][0].HostPort = "9090"
	c.Config.ExposedPorts[network.MustParsePort("81/tcp")] = struct{}{}
	c.NetworkingConfig.EndpointsConfig["appnet"].Aliases[0] = "changed"
	c.NetworkingConfig.EndpointsConfig["more"] = &network.EndpointSettings{}
	if sp.Links[0] != "db:data" || sp.PortBindings[p][0].HostPort != "8080" || len(sp.ExposedPorts) != 1 ||
		sp.Endpoints["appnet"].Aliases[0] != "www" || len(sp.Endpoints) != 1 {
		t.Errorf("the spec shares the record's values: %+v", sp)
	}
}

func TestEtcFiles(t *testing.T) {
	if got := extraHosts([]string{"h:10.1.2.3", "g=10.0.0.1", "gw:host-gateway"}, "10.0.2.2"); got != "10.1.2.3\th\n10.0.0.1\tg\n10.0.2.2\tgw\n" {
		t.Errorf("extraHosts: %q", got)
	}
	hc := &container.HostConfig{DNS: []netip.Addr{netip.MustParseAddr("10.0.2.3")}, DNSSearch: []string{"a.test", "b.test"}, DNSOptions: []string{"ndots:2"}}
	got := string(resolvConfFor(hc, "172.18.0.1", "10.0.2.3"))
	for _, want := range []string{"nameserver 10.0.2.3\n", "search a.test b.test\n", "options ndots:2\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("resolv.conf lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "172.18.0.1") {
		t.Errorf("--dns must replace the network's name server:\n%s", got)
	}
	if got := string(resolvConfFor(&container.HostConfig{}, "172.18.0.1", "10.0.2.3")); !strings.Contains(got, "nameserver 172.18.0.1\n") || strings.Count(got, "nameserver") != 1 {
		t.Errorf("a user network's name server only:\n%s", got)
	}
}

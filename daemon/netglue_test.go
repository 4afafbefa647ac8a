package daemon

import (
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
	if got := strings.Join(sp.networks(), " "); got != "appnet" {
		t.Errorf("networks %q", got)
	}
}

package network

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/errdefs"
)

func TestHostPortRange(t *testing.T) {
	for in, want := range map[string][2]int{"": {0, 0}, "0": {0, 0}, "8080": {8080, 8080}, "8000-8010": {8000, 8010}} {
		lo, hi, err := hostPortRange(in)
		if err != nil || lo != want[0] || hi != want[1] {
			t.Errorf("%q: %d-%d %v", in, lo, hi, err)
		}
	}
	for _, bad := range []string{"x", "0-5", "00", "70000", "10-5", "1-", "-1", "1-2-3", "８０"} {
		if _, _, err := hostPortRange(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
}

func TestValidatePorts(t *testing.T) {
	n := &Sandboxes{}
	bad := &container.HostConfig{PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "http"}}}}
	if err := n.Validate(bad, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("host port http: %v", err)
	}
	sctp := &container.HostConfig{PortBindings: network.PortMap{network.MustParsePort("80/sctp"): {{HostPort: "8080"}}}}
	if err := n.Validate(sctp, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("sctp: %v", err)
	}
	for _, es := range []*network.EndpointSettings{{Aliases: []string{"x"}}, {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("172.17.0.9")}}} {
		nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"default": es}}
		if err := n.Validate(&container.HostConfig{}, nc); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("alias or address on the default bridge: %v", err)
		}
	}
	host := &container.HostConfig{NetworkMode: "host", PortBindings: bad.PortBindings}
	if err := n.Validate(host, nil); err != nil {
		t.Errorf("host mode ignores port bindings, as Docker does: %v", err)
	}
}

func TestConfiguredNetworks(t *testing.T) {
	for _, tc := range []struct {
		mode  string
		extra []string
		want  string
		disc  bool
	}{
		{"", nil, "bridge", false},
		{"default", []string{"default"}, "bridge", false},
		{"bridge", []string{"b", "a"}, "bridge a b", false},
		{"appnet", []string{"appnet", "other"}, "appnet other", false},
		{"none", []string{"x"}, "", false},
		{"host", nil, "", false},
		{"container:db", nil, "", false},
		// docker-compose disconnects a created container from its mode's
		// network, then connects it again.
		{"appnet", nil, "", true},
		{"appnet", []string{"other"}, "other", true},
	} {
		eps := map[string]*network.EndpointSettings{}
		for _, e := range tc.extra {
			eps[e] = &network.EndpointSettings{}
		}
		if got := strings.Join(ConfiguredNetworks(tc.mode, eps, tc.disc), " "); got != tc.want {
			t.Errorf("%q %v: %q, want %q", tc.mode, tc.extra, got, tc.want)
		}
	}
}

func TestSkipsDefaultBridge(t *testing.T) {
	eps := func(names ...string) *network.NetworkingConfig {
		nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
		for _, n := range names {
			nc.EndpointsConfig[n] = &network.EndpointSettings{}
		}
		return nc
	}
	for _, tc := range []struct {
		mode string
		nc   *network.NetworkingConfig
		want bool
	}{
		{"", nil, false},
		{"", eps(), false},
		{"", eps("appnet"), true},
		{"default", eps("appnet", "other"), true},
		{"", eps("appnet", "bridge"), false},
		{"default", eps("default"), false},
		{"bridge", eps("appnet"), false},
		{"appnet", eps("appnet"), false},
	} {
		if got := SkipsDefaultBridge(&container.HostConfig{NetworkMode: container.NetworkMode(tc.mode)}, tc.nc); got != tc.want {
			t.Errorf("%q %v: %v, want %v", tc.mode, tc.nc, got, tc.want)
		}
	}
}

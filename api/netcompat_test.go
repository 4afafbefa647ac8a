package api

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func TestLegacyNetworkSettings(t *testing.T) {
	resp := container.InspectResponse{NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
		"bridge": {IPAddress: netip.MustParseAddr("172.17.0.2"), IPPrefixLen: 16, Gateway: netip.MustParseAddr("172.17.0.1")},
	}}}
	old := context.WithValue(context.Background(), ctxKey{}, "1.43")
	b, _ := json.Marshal(withLegacyNetworkSettings(old, resp))
	if !strings.Contains(string(b), `"IPAddress":"172.17.0.2"`) || !strings.Contains(string(b), `"Gateway":"172.17.0.1"`) {
		t.Errorf("API 1.43 lacks the top-level address: %s", b)
	}
	b, _ = json.Marshal(withLegacyNetworkSettings(context.WithValue(context.Background(), ctxKey{}, "1.52"), resp))
	if strings.Contains(string(b), `"NetworkSettings":{"IPAddress"`) {
		t.Errorf("API 1.52 has the removed fields: %s", b)
	}
}

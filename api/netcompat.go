package api

import (
	"context"

	"github.com/moby/moby/api/types/container"
)

// legacyNetworkAPI is the first API version without the top-level
// NetworkSettings addresses (IPAddress, Gateway, ...), which older clients
// and compose files' tooling still read for the default bridge.
const legacyNetworkAPI = "1.52"

// withLegacyNetworkSettings adds, for clients older than legacyNetworkAPI,
// the default bridge's address fields at the top of NetworkSettings, as
// Docker gave them. Newer clients get resp as it is.
func withLegacyNetworkSettings(ctx context.Context, resp container.InspectResponse) any {
	if cmpVersion(APIVersion(ctx), legacyNetworkAPI) >= 0 || resp.NetworkSettings == nil {
		return resp
	}
	m, ok := jsonObject(resp)
	if !ok {
		return resp
	}
	ns, _ := m["NetworkSettings"].(map[string]any)
	legacy := map[string]any{"IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": "", "Bridge": "",
		"GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "", "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
		"HairpinMode": false, "SecondaryIPAddresses": nil, "SecondaryIPv6Addresses": nil}
	if e := resp.NetworkSettings.Networks["bridge"]; e != nil && e.IPAddress.IsValid() {
		legacy["IPAddress"] = e.IPAddress.String()
		legacy["IPPrefixLen"] = e.IPPrefixLen
		legacy["Gateway"] = e.Gateway.String()
		legacy["MacAddress"] = e.MacAddress.String()
	}
	for k, v := range legacy {
		ns[k] = v
	}
	return m
}

package api

import (
	"context"
	"encoding/json"
	"strings"

	imagetypes "github.com/moby/moby/api/types/image"
)

// Docker dropped image inspect's VirtualSize at API 1.44 and its Container
// and ContainerConfig at 1.45; clients that speak older versions read them
// (docker-compose v1 reads ContainerConfig.Volumes when it recreates a
// container, and fails without the key).
const (
	noVirtualSizeAPI     = "1.44"
	noContainerConfigAPI = "1.45"
)

// withLegacyImageFields adds, for clients older than those versions, the
// fields they expect. lodge's images carry no build container, so
// ContainerConfig is empty, as Docker gives it for images it did not build
// with the classic builder. docker-compose v1 negotiates the newest
// version and still reads ContainerConfig (Docker 25 and later break its
// recreate, docker/compose#11742): it gets the field whatever its version.
func withLegacyImageFields(ctx context.Context, userAgent string, v imagetypes.InspectResponse) any {
	ver := APIVersion(ctx)
	if cmpVersion(ver, noContainerConfigAPI) >= 0 && !strings.HasPrefix(userAgent, "docker-compose/1.") {
		return v
	}
	m, ok := jsonObject(v)
	if !ok {
		return v
	}
	m["Container"] = ""
	m["ContainerConfig"] = map[string]any{}
	if cmpVersion(ver, noVirtualSizeAPI) < 0 {
		m["VirtualSize"] = v.Size
	}
	return m
}

// jsonObject is v as the JSON object it encodes to, for adding fields that
// the API types no longer have.
func jsonObject(v any) (map[string]any, bool) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, false
	}
	return m, true
}

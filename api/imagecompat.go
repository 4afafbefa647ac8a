package api

import (
	"context"
	"encoding/json"

	imagetypes "github.com/moby/moby/api/types/image"
)

// Docker dropped image inspect's VirtualSize at API 1.44 (and its
// Container and ContainerConfig at 1.45: see withLegacyImageFields).
const noVirtualSizeAPI = "1.44"

// withLegacyImageFields adds the fields older clients read. Container and
// ContainerConfig go to every client: docker-compose v1 negotiates the
// newest version and still reads ContainerConfig when it recreates a
// container (Docker 25 and later break it there, docker/compose#11742),
// and newer clients ignore the two keys, so no client needs to be told
// apart. lodge's images carry no build container, so ContainerConfig is
// empty, as Docker gives it for images it did not build with the classic
// builder. VirtualSize goes to clients older than 1.44 only.
func withLegacyImageFields(ctx context.Context, v imagetypes.InspectResponse) any {
	m, ok := jsonObject(v)
	if !ok {
		return v
	}
	m["Container"] = ""
	m["ContainerConfig"] = map[string]any{}
	if cmpVersion(APIVersion(ctx), noVirtualSizeAPI) < 0 {
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

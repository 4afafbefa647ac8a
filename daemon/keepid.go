package daemon

import (
	"fmt"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/userns"
)

// usernsKeepID is Podman's --userns=keep-id: the user's own uid and gid
// are the same inside the container as outside.
const usernsKeepID = "keep-id"

// IDMaps are a container's own user namespace maps, in the ids of lodged's
// namespace; nil when the container shares lodged's namespace.
type IDMaps struct {
	UID, GID []specs.LinuxIDMapping
}

// idMapsFor gives the maps a user-namespace mode needs. lodged's namespace
// maps its id 0 to the user and ids 1..n to the subordinate range; for
// keep-id the container gets a namespace of its own in which the user's
// host id u is lodged's 0, ids below u are lodged's 1..u (so the image's
// root is a subordinate id, as usual) and ids above u are lodged's own.
func idMapsFor(mode container.UsernsMode) (*IDMaps, error) {
	switch mode {
	case "", "host":
		return nil, nil
	case usernsKeepID:
	default:
		return nil, errdefs.InvalidArgumentf("invalid --userns %q: lodge knows host and keep-id", mode)
	}
	uids, gids, err := userns.CurrentMaps()
	if err != nil {
		return nil, err
	}
	um, err := userns.KeepIDMap(uids)
	if err != nil {
		return nil, err
	}
	gm, err := userns.KeepIDMap(gids)
	if err != nil {
		return nil, err
	}
	return &IDMaps{UID: um, GID: gm}, nil
}

// containerUser is the user a container's processes run as by default:
// its configured user, else with keep-id the user's own ids (the ids lodged's
// 0 has inside), else root.
func containerUser(c *Container, maps *IDMaps) string {
	if c.Config.User != "" || maps == nil {
		return c.Config.User
	}
	return fmt.Sprintf("%d:%d", insideOf(maps.UID), insideOf(maps.GID))
}

// insideOf is the container id that lodged's id 0 (the user) has.
func insideOf(m []specs.LinuxIDMapping) uint32 {
	for _, e := range m {
		if e.HostID == 0 {
			return e.ContainerID
		}
	}
	return 0
}

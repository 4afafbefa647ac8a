package userns

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lodge-containers/lodge/errdefs"
)

// KeepIDMap builds the map of a keep-id container's own user namespace
// from the calling process's map of that kind (uid or gid): the user's
// host id is the namespace's 0, the ids below it are 1..u (so an image's
// root is a subordinate id, as usual) and the ids above it map to
// themselves.
func KeepIDMap(own []IDMap) ([]specs.LinuxIDMapping, error) {
	user, size := -1, 0
	for _, m := range own {
		if m.ContainerID == 0 {
			user = m.HostID
		}
		if end := m.ContainerID + m.Size; end > size {
			size = end
		}
	}
	if user < 0 {
		return nil, errdefs.Unavailablef("--userns=keep-id: lodged's namespace does not map id 0")
	}
	if size < 2 {
		return nil, errdefs.Unavailablef("--userns=keep-id needs subordinate ids (/etc/subuid and /etc/subgid entries for this user); lodged runs with only the user's own id")
	}
	if user >= size {
		return nil, errdefs.Unavailablef("--userns=keep-id: the user's id %d is beyond the %d ids lodged's namespace maps", user, size)
	}
	u := uint32(user)
	maps := []specs.LinuxIDMapping{{ContainerID: u, HostID: 0, Size: 1}}
	if u > 0 {
		maps = append(maps, specs.LinuxIDMapping{ContainerID: 0, HostID: 1, Size: u})
	}
	if rest := uint32(size) - u - 1; rest > 0 {
		maps = append(maps, specs.LinuxIDMapping{ContainerID: u + 1, HostID: u + 1, Size: rest})
	}
	return maps, nil
}

package daemon

import (
	"github.com/lodge-containers/lodge/daemon/files"
	"github.com/lodge-containers/lodge/daemon/logs"
	"github.com/lodge-containers/lodge/daemon/stats"
)

// ContainerAPI is what the API's container routes are served by: the
// container service and the services cut out of it, each reached through
// its own type. It adds no method of its own; it only gathers theirs.
type ContainerAPI struct {
	*Containers
	*Lifecycle // Start, Stop, Kill, Restart, WaitFor, StartOnBoot
	*logs.Reader
	*files.Service
	*stats.Sampler
	*netGlue       // RemoveLink
	*CgroupControl // Pause, Unpause, Update
}

// NewContainerAPI gathers the services the container routes use.
func NewContainerAPI(s *Containers) ContainerAPI {
	return ContainerAPI{Containers: s, Lifecycle: s.lifecycle, Reader: logs.New(logHost{s}), Service: files.New(filesHost{s}), Sampler: newSampler(s), netGlue: s.net, CgroupControl: s.control}
}

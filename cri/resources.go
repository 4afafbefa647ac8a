package cri

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lodge-containers/lodge/errdefs"
)

// kubeletMinShares is the CPU weight the kubelet gives a container with
// no CPU request (MinShares in its cm package).
const kubeletMinShares = 2

// criResources maps the CRI's Linux resources onto Docker's, the limits
// lodge's cgroup control applies at start and at `docker update`. Zero
// values are "unset", as in both APIs. What lodge cannot apply is refused
// by name: hugepage limits above zero and raw cgroup v2 files (unified).
func criResources(r *runtimeapi.LinuxContainerResources) (container.Resources, error) {
	var out container.Resources
	if r == nil {
		return out, nil
	}
	if len(r.Unified) > 0 {
		return out, unimplemented("unified cgroup v2 settings in a container's resources")
	}
	for _, h := range r.HugepageLimits {
		// The kubelet sends a zero limit for every page size a pod does
		// not ask for; lodge's delegated cgroups have no hugetlb
		// controller to hold a limit above that.
		if h.GetLimit() != 0 {
			return out, unimplemented(fmt.Sprintf("a hugepage limit (%s)", h.GetPageSize()))
		}
	}
	if r.CpuPeriod < 0 || r.CpuQuota < -1 || r.CpuShares < 0 || r.MemoryLimitInBytes < 0 {
		return out, errdefs.InvalidArgumentf("negative resource limits: %v", r)
	}
	out.CPUPeriod, out.CPUQuota, out.CPUShares = r.CpuPeriod, r.CpuQuota, r.CpuShares
	if out.CPUQuota <= 0 {
		// The CRI's "no quota" is Docker's unset, and a CFS period
		// without a quota limits nothing: the kubelet sends its 100ms
		// period for every container, with or without a CPU limit.
		out.CPUQuota, out.CPUPeriod = 0, 0
	}
	if out.CPUShares == kubeletMinShares {
		// The kubelet's weight for a container that requests no CPU
		// (every BestEffort pod's): no request, so nothing to refuse
		// where the cpu controller is not delegated.
		out.CPUShares = 0
	}
	out.Memory, out.MemorySwap = r.MemoryLimitInBytes, r.MemorySwapLimitInBytes
	out.CpusetCpus, out.CpusetMems = r.CpusetCpus, r.CpusetMems
	return out, nil
}

// oomScoreAdj is what lodge can give of the CRI's OOM score: an
// unprivileged user may raise a score but not lower it below its own, so a
// negative one (the kubelet's for guaranteed pods) leaves the score as it
// is.
func oomScoreAdj(v int64) int {
	if v < 0 {
		return 0
	}
	return int(min(v, 1000))
}

// UpdateContainerResources changes a container's limits through lodge's
// update path (`docker update`'s): applied to its cgroup at once when it
// runs, recorded for its next start.
func (s *Server) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	c, err := s.ctr(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if s.b.Resources == nil {
		return nil, unimplemented("UpdateContainerResources")
	}
	if len(req.GetAnnotations()) > 0 {
		s.log.Debug("CRI update: annotations are not kept", "id", c.ID)
	}
	r, err := criResources(req.GetLinux())
	if err != nil {
		return nil, err
	}
	if _, err := s.b.Resources.Update(ctx, c.ID, container.UpdateConfig{Resources: r}); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

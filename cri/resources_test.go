package cri

import (
	"testing"

	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestCRIResources: what the kubelet sends for a container with no
// requests or limits asks lodge for no limit, so such a pod runs where
// the cpu controller is not delegated; real requests and limits pass.
func TestCRIResources(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *runtimeapi.LinuxContainerResources
		want container.Resources
	}{
		{"none", nil, container.Resources{}},
		{"best effort, as the kubelet sends it", &runtimeapi.LinuxContainerResources{CpuShares: 2, CpuPeriod: 100000, OomScoreAdj: 1000}, container.Resources{}},
		{"no quota", &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: -1}, container.Resources{}},
		{"a request", &runtimeapi.LinuxContainerResources{CpuShares: 102, CpuPeriod: 100000}, container.Resources{CPUShares: 102}},
		{"a limit", &runtimeapi.LinuxContainerResources{CpuShares: 2, CpuPeriod: 100000, CpuQuota: 50000, MemoryLimitInBytes: 64 << 20},
			container.Resources{CPUPeriod: 100000, CPUQuota: 50000, Memory: 64 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := criResources(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.CPUShares != tc.want.CPUShares || got.CPUPeriod != tc.want.CPUPeriod || got.CPUQuota != tc.want.CPUQuota || got.Memory != tc.want.Memory {
				t.Errorf("got shares %d period %d quota %d memory %d, want %+v", got.CPUShares, got.CPUPeriod, got.CPUQuota, got.Memory, tc.want)
			}
		})
	}
}

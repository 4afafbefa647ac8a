package cri

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lodge-containers/lodge/daemon"
)

// fakeResources answers each container's stats from a table, as lodge's
// sampler would from its cgroup, and keeps what Update is given.
type fakeResources struct {
	samples map[string]container.StatsResponse
	updated map[string]container.Resources
}

func (f *fakeResources) Stats(_ context.Context, ref string, opts daemon.StatsOptions, send func(container.StatsResponse) error) error {
	if !opts.OneShot || opts.Stream {
		panic("the CRI wants one sample at once")
	}
	r := f.samples[ref]
	r.Read = time.Now()
	return send(r)
}

func (f *fakeResources) Update(_ context.Context, ref string, u container.UpdateConfig) (container.UpdateResponse, error) {
	if f.updated == nil {
		f.updated = map[string]container.Resources{}
	}
	f.updated[ref] = u.Resources
	return container.UpdateResponse{}, nil
}

func sampleOf(cpu, mem, inactive uint64, procs uint64) container.StatsResponse {
	return container.StatsResponse{
		CPUStats:    container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: cpu}},
		MemoryStats: container.MemoryStats{Usage: mem, Limit: 1 << 30, Stats: map[string]uint64{"inactive_file": inactive, "anon": mem / 2, "pgfault": 7}},
		PidsStats:   container.PidsStats{Current: procs},
		Networks:    map[string]container.NetworkStats{"eth0": {RxBytes: 100, TxBytes: 200}},
	}
}

// pauseBinary is a stand-in lodge-init for the pause image's import.
func pauseBinary(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "lodge-init")
	if err := os.WriteFile(p, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// podWithContainers runs a pod with two containers (one labelled) in the
// fakes and returns their IDs.
func podWithContainers(t *testing.T, rt runtimeapi.RuntimeServiceClient) (pod string, ctrs []string) {
	t.Helper()
	ctx := context.Background()
	podCfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "ns", Uid: "u1"}, Labels: map[string]string{"app": "web"}}
	run, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"a", "b"} {
		cfg := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: name}, Image: &runtimeapi.ImageSpec{Image: "busybox"}}
		if i == 0 {
			cfg.Labels = map[string]string{"tier": "front"}
		}
		c, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: run.PodSandboxId, Config: cfg, SandboxConfig: podCfg})
		if err != nil {
			t.Fatal(err)
		}
		ctrs = append(ctrs, c.ContainerId)
	}
	return run.PodSandboxId, ctrs
}

// TestStats: the CRI's container and pod stats are the daemon's cgroup
// samples in the CRI's terms — the working set without the inactive file
// cache, a pod's use summed over its sandbox and containers — and the
// filters keep what they name.
func TestStats(t *testing.T) {
	ctrs, res := &fakeContainers{}, &fakeResources{samples: map[string]container.StatsResponse{}}
	rt := runtimeapi.NewRuntimeServiceClient(serve(t, New(Backends{Containers: ctrs, Resources: res, Images: &fakePauseImages{}, Networks: &fakeNetworks{}, PauseBinary: pauseBinary(t)}, quiet)))
	ctx := context.Background()
	pod, ids := podWithContainers(t, rt)
	res.samples[pod] = sampleOf(1000, 1<<20, 0, 1)
	res.samples[ids[0]] = sampleOf(5000, 10<<20, 4<<20, 2)
	res.samples[ids[1]] = sampleOf(7000, 20<<20, 0, 3)

	one, err := rt.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: ids[0]})
	if err != nil {
		t.Fatal(err)
	}
	st := one.Stats
	if st.Attributes.Id != ids[0] || st.Attributes.Metadata.Name != "a" || st.Attributes.Labels["tier"] != "front" {
		t.Errorf("attributes: %v", st.Attributes)
	}
	if st.Cpu.Timestamp == 0 || st.Cpu.UsageCoreNanoSeconds.GetValue() != 5000 {
		t.Errorf("cpu: %v", st.Cpu)
	}
	if m := st.Memory; m.Timestamp == 0 || m.UsageBytes.GetValue() != 10<<20 || m.WorkingSetBytes.GetValue() != 6<<20 ||
		m.AvailableBytes.GetValue() != (1<<30)-(6<<20) || m.RssBytes.GetValue() != 5<<20 || m.PageFaults.GetValue() != 7 {
		t.Errorf("memory: %v", m)
	}

	list, err := rt.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Stats) != 2 {
		t.Errorf("ListContainerStats without a filter: %d stats, want 2", len(list.Stats))
	}
	for _, f := range []struct {
		filter *runtimeapi.ContainerStatsFilter
		want   int
	}{
		{&runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"tier": "front"}}, 1},
		{&runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"tier": "back"}}, 0},
		{&runtimeapi.ContainerStatsFilter{Id: ids[1]}, 1},
		{&runtimeapi.ContainerStatsFilter{PodSandboxId: pod}, 2},
		{&runtimeapi.ContainerStatsFilter{PodSandboxId: "nosuchpod"}, 0},
	} {
		got, err := rt.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{Filter: f.filter})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Stats) != f.want {
			t.Errorf("ListContainerStats %v: %d stats, want %d", f.filter, len(got.Stats), f.want)
		}
	}
	// A second sample gives a rate.
	res.samples[ids[0]] = sampleOf(5000+1e9, 10<<20, 4<<20, 2)
	time.Sleep(10 * time.Millisecond)
	again, err := rt.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: ids[0]})
	if err != nil {
		t.Fatal(err)
	}
	if again.Stats.Cpu.UsageNanoCores.GetValue() == 0 {
		t.Errorf("no usage_nano_cores from two samples: %v", again.Stats.Cpu)
	}

	ps, err := rt.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: pod})
	if err != nil {
		t.Fatal(err)
	}
	l := ps.Stats.Linux
	if ps.Stats.Attributes.Id != pod || ps.Stats.Attributes.Metadata.Name != "web" || ps.Stats.Attributes.Labels["app"] != "web" {
		t.Errorf("pod attributes: %v", ps.Stats.Attributes)
	}
	if got := l.Cpu.UsageCoreNanoSeconds.GetValue(); got != 1000+5000+1e9+7000 {
		t.Errorf("pod cpu = %d", got)
	}
	if got := l.Memory.WorkingSetBytes.GetValue(); got != (1<<20)+(6<<20)+(20<<20) {
		t.Errorf("pod working set = %d", got)
	}
	if got := l.Process.ProcessCount.GetValue(); got != 6 {
		t.Errorf("pod processes = %d", got)
	}
	if l.Network.GetDefaultInterface().GetName() != "eth0" || l.Network.DefaultInterface.RxBytes.GetValue() != 100 {
		t.Errorf("pod network: %v", l.Network)
	}
	if len(l.Containers) != 2 {
		t.Errorf("pod stats hold %d containers, want 2", len(l.Containers))
	}
	lps, err := rt.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{Filter: &runtimeapi.PodSandboxStatsFilter{LabelSelector: map[string]string{"app": "db"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(lps.Stats) != 0 {
		t.Errorf("ListPodSandboxStats app=db: %d", len(lps.Stats))
	}
	if lps, err = rt.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{}); err != nil || len(lps.Stats) != 1 {
		t.Errorf("ListPodSandboxStats: %v, %v", lps, err)
	}
	if _, err := rt.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: pod}); status.Code(err) != codes.NotFound {
		t.Errorf("ContainerStats of a sandbox: %v, want NotFound", err)
	}
}

// TestUpdateResources: the CRI's limits reach lodge's update path in
// Docker's terms, and what lodge cannot apply is refused by name.
func TestUpdateResources(t *testing.T) {
	ctrs, res := &fakeContainers{}, &fakeResources{}
	rt := runtimeapi.NewRuntimeServiceClient(serve(t, New(Backends{Containers: ctrs, Resources: res, Images: &fakePauseImages{}, Networks: &fakeNetworks{}, PauseBinary: pauseBinary(t)}, quiet)))
	ctx := context.Background()
	_, ids := podWithContainers(t, rt)
	_, err := rt.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: ids[0], Linux: &runtimeapi.LinuxContainerResources{
		MemoryLimitInBytes: 64 << 20, CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, CpusetCpus: "0",
		HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 0}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := container.Resources{Memory: 64 << 20, CPUPeriod: 100000, CPUQuota: 50000, CPUShares: 512, CpusetCpus: "0"}
	if got := res.updated[ids[0]]; got.Memory != want.Memory || got.CPUPeriod != want.CPUPeriod || got.CPUQuota != want.CPUQuota ||
		got.CPUShares != want.CPUShares || got.CpusetCpus != want.CpusetCpus {
		t.Errorf("update got %+v", got)
	}
	for _, bad := range []*runtimeapi.LinuxContainerResources{
		{Unified: map[string]string{"memory.high": "1000000"}},
		{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 2 << 20}}},
	} {
		if _, err := rt.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: ids[1], Linux: bad}); status.Code(err) != codes.Unimplemented {
			t.Errorf("update %v: %v, want Unimplemented", bad, err)
		}
	}
	if _, ok := res.updated[ids[1]]; ok {
		t.Errorf("a refused update reached the daemon")
	}
	if _, err := rt.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: "nosuch", Linux: &runtimeapi.LinuxContainerResources{}}); status.Code(err) != codes.NotFound {
		t.Errorf("update of a missing container: %v", err)
	}

	// The same limits at create, and the OOM score only raised.
	podCfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "ns", Uid: "u1"}}
	pod := ctrs.ctrs[ids[0]].Config.Labels[labelSandboxID]
	for _, adj := range []int64{-997, 500} {
		cr, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, SandboxConfig: podCfg, Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "limited"}, Image: &runtimeapi.ImageSpec{Image: "busybox"},
			Linux: &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20, CpuQuota: 20000, CpuPeriod: 100000, OomScoreAdj: adj}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		hc := ctrs.ctrs[cr.ContainerId].HostConfig
		if hc.Memory != 32<<20 || hc.CPUQuota != 20000 || hc.CPUPeriod != 100000 {
			t.Errorf("create's resources: %+v", hc.Resources)
		}
		if want := max(int(adj), 0); hc.OomScoreAdj != want {
			t.Errorf("oom_score_adj %d became %d, want %d", adj, hc.OomScoreAdj, want)
		}
	}
}

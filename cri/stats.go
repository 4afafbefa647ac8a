package cri

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lodge-containers/lodge/daemon"
	"github.com/lodge-containers/lodge/errdefs"
)

// Resources is lodge's stats and update paths, the ones `docker stats`
// and `docker update` take (daemon.ContainerAPI fits).
type Resources interface {
	Stats(ctx context.Context, ref string, opts daemon.StatsOptions, send func(container.StatsResponse) error) error
	Update(ctx context.Context, ref string, u container.UpdateConfig) (container.UpdateResponse, error)
}

// cpuSample is a container's CPU use at a time, kept between two stats
// calls to answer usage_nano_cores as containerd does: the kubelet reads
// the rate from the runtime, not from two of its own samples.
type cpuSample struct {
	at    time.Time
	usage uint64 // nanoseconds of CPU
}

// cpuRates remembers the last CPU sample of each container.
type cpuRates struct {
	mu   sync.Mutex
	last map[string]cpuSample
}

// rate records cur for id and returns the nanocores since the sample
// before it, or nil when there is none to compare with.
func (r *cpuRates) rate(id string, cur cpuSample) *runtimeapi.UInt64Value {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]cpuSample{}
	}
	prev, ok := r.last[id]
	r.last[id] = cur
	d := cur.at.Sub(prev.at)
	if !ok || d <= 0 || cur.usage < prev.usage {
		return nil
	}
	return &runtimeapi.UInt64Value{Value: uint64(float64(cur.usage-prev.usage) / d.Seconds())}
}

// forget drops the samples of containers not in keep.
func (r *cpuRates) forget(keep map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.last {
		if !keep[id] {
			delete(r.last, id)
		}
	}
}

// sample is one stats sample of container id in Docker's shape, from the
// daemon's stats backend. A container that is not running has an empty
// sample, read now.
func (s *Server) sample(ctx context.Context, id string) (container.StatsResponse, error) {
	if s.b.Resources == nil {
		return container.StatsResponse{}, errdefs.NotImplementedf("lodge serves no container stats here")
	}
	var got container.StatsResponse
	err := s.b.Resources.Stats(ctx, id, daemon.StatsOptions{OneShot: true}, func(r container.StatsResponse) error {
		got = r
		return nil
	})
	if got.Read.IsZero() {
		got.Read = time.Now().UTC()
	}
	return got, err
}

// containerStats is a Docker stats sample in the CRI's shape.
func (s *Server) containerStats(sum container.Summary, r container.StatsResponse) *runtimeapi.ContainerStats {
	labels, annotations := requestLabels(sum.Labels)
	at := r.Read.UnixNano()
	usage := r.CPUStats.CPUUsage.TotalUsage
	out := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{
			Id: sum.ID, Metadata: containerMetadata(sum.Labels), Labels: labels, Annotations: annotations,
		},
		Cpu: &runtimeapi.CpuUsage{
			Timestamp:            at,
			UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: usage},
			UsageNanoCores:       s.rates.rate(sum.ID, cpuSample{at: r.Read, usage: usage}),
		},
		Memory: memoryUsage(at, r.MemoryStats),
	}
	if s.b.ImageRoot != "" {
		out.WritableLayer = &runtimeapi.FilesystemUsage{Timestamp: at, FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: s.b.ImageRoot}}
		if sum.SizeRw > 0 {
			out.WritableLayer.UsedBytes = &runtimeapi.UInt64Value{Value: uint64(sum.SizeRw)}
		}
	}
	return out
}

// memoryUsage is cgroup v2 memory in the CRI's terms: the working set is
// the usage less the inactive file cache, as the kubelet and containerd
// count it (what the kernel can take back without a fight).
func memoryUsage(at int64, m container.MemoryStats) *runtimeapi.MemoryUsage {
	ws := m.Usage
	if inactive := m.Stats["inactive_file"]; inactive < ws {
		ws -= inactive
	} else {
		ws = 0
	}
	mu := &runtimeapi.MemoryUsage{
		Timestamp:       at,
		WorkingSetBytes: &runtimeapi.UInt64Value{Value: ws},
		UsageBytes:      &runtimeapi.UInt64Value{Value: m.Usage},
		RssBytes:        &runtimeapi.UInt64Value{Value: m.Stats["anon"]},
		PageFaults:      &runtimeapi.UInt64Value{Value: m.Stats["pgfault"]},
		MajorPageFaults: &runtimeapi.UInt64Value{Value: m.Stats["pgmajfault"]},
	}
	if m.Limit > ws {
		mu.AvailableBytes = &runtimeapi.UInt64Value{Value: m.Limit - ws}
	}
	return mu
}

// listCRI lists lodge's containers of a CRI type (sandboxes or containers).
func (s *Server) listCRI(typ string) ([]container.Summary, error) {
	return s.b.Containers.List(daemon.ListOptions{All: true, Filters: map[string][]string{"label": {labelType + "=" + typ}}})
}

// ContainerStats reports one container's CPU, memory and writable layer.
func (s *Server) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.ctr(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	r, err := s.sample(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	sum := container.Summary{ID: c.ID, Labels: c.Config.Labels}
	return &runtimeapi.ContainerStatsResponse{Stats: s.containerStats(sum, r)}, nil
}

// ListContainerStats reports the stats of every CRI container the filter
// keeps (created and exited ones too, with nothing used).
func (s *Server) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	sums, err := s.listCRI(typeContainer)
	if err != nil {
		return nil, err
	}
	f := req.GetFilter()
	resp := &runtimeapi.ListContainerStatsResponse{}
	seen := map[string]bool{}
	for _, c := range sums {
		seen[c.ID] = true
		labels, _ := requestLabels(c.Labels)
		if !hasIDPrefix(c.ID, f.GetId()) || !hasIDPrefix(c.Labels[labelSandboxID], f.GetPodSandboxId()) || !matchLabels(labels, f.GetLabelSelector()) {
			continue
		}
		r, err := s.sample(ctx, c.ID)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // removed since the list
		}
		if err != nil {
			return nil, err
		}
		resp.Stats = append(resp.Stats, s.containerStats(c, r))
	}
	s.rates.forget(seen)
	return resp, nil
}

// PodSandboxStats reports a pod's use: its sandbox's and containers'
// cgroups summed (lodge gives each its own cgroup, with no pod cgroup
// above them), the sandbox's network, and each container's stats.
func (s *Server) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	sb, err := s.sandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	ctrs, err := s.podContainers(sb.ID)
	if err != nil {
		return nil, err
	}
	st, err := s.podStats(ctx, container.Summary{ID: sb.ID, Labels: sb.Config.Labels}, ctrs)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: st}, nil
}

// ListPodSandboxStats reports the stats of every pod the filter keeps.
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	sbs, err := s.listCRI(typeSandbox)
	if err != nil {
		return nil, err
	}
	all, err := s.listCRI(typeContainer)
	if err != nil {
		return nil, err
	}
	byPod := map[string][]container.Summary{}
	for _, c := range all {
		byPod[c.Labels[labelSandboxID]] = append(byPod[c.Labels[labelSandboxID]], c)
	}
	f := req.GetFilter()
	resp := &runtimeapi.ListPodSandboxStatsResponse{}
	seen := map[string]bool{}
	for _, sb := range sbs {
		seen[sb.ID] = true
		labels, _ := requestLabels(sb.Labels)
		if !hasIDPrefix(sb.ID, f.GetId()) || !matchLabels(labels, f.GetLabelSelector()) {
			continue
		}
		st, err := s.podStats(ctx, sb, byPod[sb.ID])
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		resp.Stats = append(resp.Stats, st)
	}
	s.podRates.forget(seen)
	return resp, nil
}

// podStats sums a sandbox's sample and its containers'.
func (s *Server) podStats(ctx context.Context, sb container.Summary, ctrs []container.Summary) (*runtimeapi.PodSandboxStats, error) {
	r, err := s.sample(ctx, sb.ID)
	if err != nil {
		return nil, err
	}
	labels, annotations := requestLabels(sb.Labels)
	at := r.Read.UnixNano()
	cpu, mem := r.CPUStats.CPUUsage.TotalUsage, r.MemoryStats
	mem.Stats = map[string]uint64{"inactive_file": mem.Stats["inactive_file"], "anon": mem.Stats["anon"], "pgfault": mem.Stats["pgfault"], "pgmajfault": mem.Stats["pgmajfault"]}
	procs := r.PidsStats.Current
	linux := &runtimeapi.LinuxPodSandboxStats{}
	for _, c := range ctrs {
		cr, err := s.sample(ctx, c.ID)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		linux.Containers = append(linux.Containers, s.containerStats(c, cr))
		cpu += cr.CPUStats.CPUUsage.TotalUsage
		mem.Usage += cr.MemoryStats.Usage
		for k := range mem.Stats {
			mem.Stats[k] += cr.MemoryStats.Stats[k]
		}
		procs += cr.PidsStats.Current
	}
	mem.Limit = 0 // no pod-wide limit: the sum of the parts has none
	linux.Cpu = &runtimeapi.CpuUsage{
		Timestamp: at, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cpu},
		UsageNanoCores: s.podRates.rate(sb.ID, cpuSample{at: r.Read, usage: cpu}),
	}
	linux.Memory = memoryUsage(at, mem)
	linux.Process = &runtimeapi.ProcessUsage{Timestamp: at, ProcessCount: &runtimeapi.UInt64Value{Value: procs}}
	if len(r.Networks) > 0 {
		ns := &runtimeapi.NetworkUsage{Timestamp: at}
		for name, n := range r.Networks {
			u := &runtimeapi.NetworkInterfaceUsage{
				Name: name, RxBytes: &runtimeapi.UInt64Value{Value: n.RxBytes}, RxErrors: &runtimeapi.UInt64Value{Value: n.RxErrors},
				TxBytes: &runtimeapi.UInt64Value{Value: n.TxBytes}, TxErrors: &runtimeapi.UInt64Value{Value: n.TxErrors},
			}
			if name == "eth0" || ns.DefaultInterface == nil {
				if ns.DefaultInterface != nil {
					ns.Interfaces = append(ns.Interfaces, ns.DefaultInterface)
				}
				ns.DefaultInterface = u
				continue
			}
			ns.Interfaces = append(ns.Interfaces, u)
		}
		linux.Network = ns
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: sb.ID, Metadata: sandboxMetadata(sb.Labels), Labels: labels, Annotations: annotations},
		Linux:      linux,
	}, nil
}

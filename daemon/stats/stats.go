package stats

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/cgroupv2"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/proc"
)

// Containers is what sampling needs of the container service.
type Containers interface {
	// Proc reads container ref's record under its lock; an unknown one
	// is errdefs.ErrNotFound.
	Proc(ref string) (Target, error)
}

// Target is a container as sampling sees it.
type Target struct {
	ID, Name string // the name without its leading /
	Running  bool   // running or paused
	Pid      int    // its init's, while it runs
}

// CgroupDirs finds containers' cgroups. (*cgroupv2.Tree fits.)
type CgroupDirs interface {
	ContainerDir(id string) string
}

// Sampler samples containers: docker stats and docker top. It holds no
// state of its own and is safe for concurrent use.
type Sampler struct {
	containers    Containers
	cgroups       CgroupDirs
	cgroupSummary string
}

// New makes the sampler. cgroups is nil when lodged has no delegated
// cgroup v2; stats then answer 501 with summary, which says why.
func New(containers Containers, cgroups CgroupDirs, summary string) *Sampler {
	return &Sampler{containers: containers, cgroups: cgroups, cgroupSummary: summary}
}

// Options are GET /containers/{id}/stats's.
type Options struct {
	// Stream sends a sample a second until ctx ends or the container
	// stops; otherwise one sample goes.
	Stream bool
	// OneShot sends that one sample at once, without the sample a second
	// before it that CPU percentages are computed from.
	OneShot bool
}

// statsInterval is how often a stream samples, as Docker's does.
const statsInterval = time.Second

// Stats samples a container's use of the machine in Docker's shape and
// hands each sample to send. A container that is not running gives one
// empty sample. Without a delegated cgroup there is nothing to sample
// from: a 501 saying so.
func (s *Sampler) Stats(ctx context.Context, ref string, opts Options, send func(container.StatsResponse) error) error {
	t, err := s.containers.Proc(ref)
	if err != nil {
		return err
	}
	id, name, running, pid := t.ID, "/"+t.Name, t.Running, t.Pid
	if s.cgroups == nil {
		return errdefs.NotImplementedf("stats need a cgroup v2 subtree delegated to lodged, and lodged has none (%s)", s.cgroupSummary)
	}
	if !running {
		return send(container.StatsResponse{ID: id, Name: name, OSType: "linux", Read: time.Now().UTC()})
	}
	dir := s.cgroups.ContainerDir(id)
	tick := time.NewTicker(statsInterval)
	defer tick.Stop()
	var prev container.StatsResponse
	if !opts.OneShot {
		if prev, err = sample(dir, pid); err != nil {
			return send(container.StatsResponse{ID: id, Name: name, OSType: "linux", Read: time.Now().UTC()})
		}
	}
	for {
		if !opts.OneShot || opts.Stream {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
		cur, err := sample(dir, pid)
		if err != nil {
			return nil // the container stopped: the stream ends
		}
		cur.ID, cur.Name, cur.OSType = id, name, "linux"
		cur.PreRead, cur.PreCPUStats = prev.Read, prev.CPUStats
		if err := send(cur); err != nil || !opts.Stream {
			return err
		}
		prev = cur
	}
}

// sample reads one sample of the cgroup at dir, and the interface
// counters of the network namespace of the container's init, pid.
func sample(dir string, pid int) (container.StatsResponse, error) {
	st, err := cgroupv2.ReadStats(dir)
	if err != nil {
		return container.StatsResponse{}, err
	}
	sys, cpus, _ := cgroupv2.SystemCPUUsage("/proc/stat")
	r := container.StatsResponse{
		Read: time.Now().UTC(),
		CPUStats: container.CPUStats{
			CPUUsage: container.CPUUsage{
				TotalUsage:        st.CPUUsageUsec * 1000,
				UsageInUsermode:   st.CPUUserUsec * 1000,
				UsageInKernelmode: st.CPUSystemUsec * 1000,
			},
			SystemUsage: sys,
			OnlineCPUs:  cpus,
			ThrottlingData: container.ThrottlingData{
				Periods: st.NrPeriods, ThrottledPeriods: st.NrThrottled, ThrottledTime: st.ThrottledUsec * 1000,
			},
		},
		MemoryStats: container.MemoryStats{Usage: st.MemoryUsage, Limit: st.MemoryLimit, Stats: st.MemoryStat},
		PidsStats:   container.PidsStats{Current: st.Pids, Limit: st.PidsLimit},
		NumProcs:    0,
	}
	r.Networks = networkStats(pid)
	if r.MemoryStats.Limit == 0 {
		r.MemoryStats.Limit = uint64(machineMemory()) // no limit: the machine's memory, as Docker shows it
	}
	for _, d := range st.IO {
		r.BlkioStats.IoServiceBytesRecursive = append(r.BlkioStats.IoServiceBytesRecursive,
			container.BlkioStatEntry{Major: d.Major, Minor: d.Minor, Op: "read", Value: d.Rbytes},
			container.BlkioStatEntry{Major: d.Major, Minor: d.Minor, Op: "write", Value: d.Wbytes})
		r.BlkioStats.IoServicedRecursive = append(r.BlkioStats.IoServicedRecursive,
			container.BlkioStatEntry{Major: d.Major, Minor: d.Minor, Op: "read", Value: d.Rios},
			container.BlkioStatEntry{Major: d.Major, Minor: d.Minor, Op: "write", Value: d.Wios})
	}
	return r, nil
}

// networkStats are a container's interfaces' counters, loopback left out
// as Docker leaves it out; nil when they cannot be read (the container
// just ended) or it has no other interface (--network none).
func networkStats(pid int) map[string]container.NetworkStats {
	devs, err := proc.NetDevs(pid)
	if err != nil {
		return nil
	}
	var out map[string]container.NetworkStats
	for name, d := range devs {
		if name == "lo" {
			continue
		}
		if out == nil {
			out = map[string]container.NetworkStats{}
		}
		out[name] = container.NetworkStats{
			RxBytes: d.RxBytes, RxPackets: d.RxPackets, RxErrors: d.RxErrors, RxDropped: d.RxDropped,
			TxBytes: d.TxBytes, TxPackets: d.TxPackets, TxErrors: d.TxErrors, TxDropped: d.TxDropped,
		}
	}
	return out
}

// machineMemory is the machine's memory in bytes, 0 when unknown.
func machineMemory() int64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}

package main

import (
	"testing"

	"github.com/moby/moby/api/types/container"
)

func TestResourceFlags(t *testing.T) {
	f := resourceFlags{memory: "64m", memorySwap: "-1", memoryReservation: "1g", cpus: "0.5", cpuShares: 512, pidsLimit: 50, cpusetCpus: "0", blkioWeight: 300}
	r, err := f.resources()
	if err != nil {
		t.Fatal(err)
	}
	if r.Memory != 64<<20 || r.MemorySwap != -1 || r.MemoryReservation != 1<<30 || r.NanoCPUs != 5e8 || r.CPUShares != 512 ||
		r.PidsLimit == nil || *r.PidsLimit != 50 || r.CpusetCpus != "0" || r.BlkioWeight != 300 {
		t.Errorf("resources = %+v", r)
	}
	for _, bad := range []resourceFlags{{memory: "lots"}, {cpus: "x"}, {cpus: "-1"}} {
		if _, err := bad.resources(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	if r, _ := (&resourceFlags{}).resources(); r.PidsLimit != nil || r.Memory != 0 {
		t.Errorf("no flags: %+v", r)
	}
}

func TestRowOf(t *testing.T) {
	var st container.StatsResponse
	st.ID, st.Name = "0123456789abcdef", "/web"
	st.PreCPUStats.CPUUsage.TotalUsage, st.PreCPUStats.SystemUsage = 1e9, 100e9
	st.CPUStats.CPUUsage.TotalUsage, st.CPUStats.SystemUsage, st.CPUStats.OnlineCPUs = 1.5e9, 102e9, 2
	st.MemoryStats = container.MemoryStats{Usage: 10 << 20, Limit: 64 << 20, Stats: map[string]uint64{"inactive_file": 2 << 20}}
	st.PidsStats.Current = 3
	r := rowOf("web", st)
	// 0.5 s of CPU over 2 s of two CPUs' time: half a CPU.
	if r.id != "0123456789ab" || r.name != "web" || r.cpu != 50 || r.mem != 8<<20 || r.memLimit != 64<<20 || r.pids != 3 {
		t.Errorf("row = %+v", r)
	}
	st.PreCPUStats = container.CPUStats{} // a one-shot sample: no figure
	if r := rowOf("web", st); r.cpu != 0 {
		t.Errorf("cpu without a previous sample: %v", r.cpu)
	}
}

package cgroupv2

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lodge-containers/lodge/internal/cgroupfs"
)

// Stats is one sample of a cgroup's usage. Figures a controller that is not
// delegated would give are zero, with the Has flags false.
type Stats struct {
	// From cpu.stat, which every v2 cgroup has.
	CPUUsageUsec, CPUUserUsec, CPUSystemUsec uint64
	// Throttling, with the cpu controller.
	NrPeriods, NrThrottled, ThrottledUsec uint64

	// HasMemory is true with the memory controller; without it,
	// MemoryUsage is the sum of the processes' resident sets (shared pages
	// counted in each), the best figure there is.
	HasMemory   bool
	MemoryUsage uint64            // memory.current
	MemoryLimit uint64            // memory.max; 0 when "max"
	MemoryStat  map[string]uint64 // memory.stat
	OOMKills    uint64            // memory.events oom_kill

	// Pids is pids.current, or the threads counted in cgroup.threads
	// without the pids controller; PidsLimit is 0 without a limit.
	Pids, PidsLimit uint64

	IO []IOStat // io.stat, with the io controller
}

// IOStat is one device's line of io.stat.
type IOStat struct {
	Major, Minor               uint64
	Rbytes, Wbytes, Rios, Wios uint64
}

// ReadStats samples the cgroup at dir. Only a missing cgroup is an error.
func ReadStats(dir string) (Stats, error) {
	var s Stats
	cpu, err := readKeyed(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return s, err
	}
	s.CPUUsageUsec, s.CPUUserUsec, s.CPUSystemUsec = cpu["usage_usec"], cpu["user_usec"], cpu["system_usec"]
	s.NrPeriods, s.NrThrottled, s.ThrottledUsec = cpu["nr_periods"], cpu["nr_throttled"], cpu["throttled_usec"]
	if v, ok := readUint(filepath.Join(dir, "memory.current")); ok {
		s.HasMemory, s.MemoryUsage = true, v
		s.MemoryLimit, _ = readUint(filepath.Join(dir, "memory.max"))
		s.MemoryStat, _ = readKeyed(filepath.Join(dir, "memory.stat"))
		ev, _ := readKeyed(filepath.Join(dir, "memory.events"))
		s.OOMKills = ev["oom_kill"]
	} else {
		s.MemoryUsage = residentSum(dir)
	}
	if v, ok := readUint(filepath.Join(dir, "pids.current")); ok {
		s.Pids = v
		s.PidsLimit, _ = readUint(filepath.Join(dir, "pids.max"))
	} else if b, err := os.ReadFile(filepath.Join(dir, "cgroup.threads")); err == nil {
		s.Pids = uint64(bytes.Count(b, []byte{'\n'}))
	}
	s.IO = readIOStat(filepath.Join(dir, "io.stat"))
	return s, nil
}

// residentSum adds up the resident set sizes of the cgroup's processes.
func residentSum(dir string) uint64 {
	pids, _ := Procs(dir)
	var sum uint64
	page := uint64(os.Getpagesize())
	for _, p := range pids {
		if p <= 0 {
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/statm")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 1 {
			n, _ := strconv.ParseUint(f[1], 10, 64)
			sum += n * page
		}
	}
	return sum
}

// SystemCPUUsage is the machine's CPU time in nanoseconds, as Docker
// reports it for CPU percentages (the "cpu" line of /proc/stat, in
// USER_HZ ticks of 10 ms), and the number of online CPUs.
func SystemCPUUsage(procStat string) (nanos uint64, cpus uint32, err error) {
	b, err := os.ReadFile(procStat)
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "cpu":
			var ticks uint64
			for _, v := range f[1:min(len(f), 9)] { // user .. steal
				n, _ := strconv.ParseUint(v, 10, 64)
				ticks += n
			}
			nanos = ticks * 1e7
		case strings.HasPrefix(f[0], "cpu"):
			cpus++
		}
	}
	return nanos, cpus, nil
}

// OOMKills reads how many processes the kernel's OOM killer took from the
// cgroup at dir (memory.events oom_kill); 0 without the memory controller.
func OOMKills(dir string) uint64 { return cgroupfs.OOMKills(dir) }

// readUint reads a single-value file; "max" reads as 0.
func readUint(path string) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n, true
}

// readIOStat parses io.stat: "MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. ...".
func readIOStat(path string) []IOStat {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []IOStat
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		maj, min, ok := strings.Cut(fields[0], ":")
		if !ok {
			continue
		}
		var st IOStat
		st.Major, _ = strconv.ParseUint(maj, 10, 64)
		st.Minor, _ = strconv.ParseUint(min, 10, 64)
		for _, kv := range fields[1:] {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseUint(v, 10, 64)
			switch k {
			case "rbytes":
				st.Rbytes = n
			case "wbytes":
				st.Wbytes = n
			case "rios":
				st.Rios = n
			case "wios":
				st.Wios = n
			}
		}
		out = append(out, st)
	}
	return out
}

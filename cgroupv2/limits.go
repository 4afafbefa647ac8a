package cgroupv2

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/errdefs"
)

// Limits are a container's resource limits in Docker's units (a HostConfig's
// Resources). The zero value limits nothing; a zero field is "not set".
type Limits struct {
	Memory            int64 // bytes
	MemorySwap        int64 // memory plus swap, bytes; -1 unlimited swap
	MemoryReservation int64 // bytes, a soft floor (memory.low)
	NanoCPUs          int64 // CPUs in units of 1e-9
	CPUQuota          int64 // µs per CPUPeriod; -1 unlimited
	CPUPeriod         int64 // µs
	CPUShares         int64 // relative weight, 2..262144, 1024 the default
	CpusetCpus        string
	CpusetMems        string
	PidsLimit         int64  // -1 unlimited
	BlkioWeight       uint16 // 10..1000
	// Throttles are per-device I/O limits.
	ReadBps, WriteBps, ReadIOps, WriteIOps []Throttle
}

// Throttle limits one block device, named by its major and minor numbers.
type Throttle struct {
	Major, Minor uint32
	Rate         uint64
}

// DeviceThrottle makes a Throttle for the block device at path.
func DeviceThrottle(path string, rate uint64) (Throttle, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return Throttle{}, errdefs.InvalidArgumentf("device %s: %v", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return Throttle{}, errdefs.InvalidArgumentf("%s is not a block device", path)
	}
	return Throttle{Major: unix.Major(uint64(st.Rdev)), Minor: unix.Minor(uint64(st.Rdev)), Rate: rate}, nil
}

// File is one value written to one cgroup interface file.
type File struct{ Name, Value string }

// Validate checks limits the way Docker does, with Docker's messages.
func (l Limits) Validate() error {
	switch {
	case l.Memory != 0 && l.Memory < 6*1024*1024:
		return errdefs.InvalidArgumentf("Minimum memory limit allowed is 6MB")
	case l.MemorySwap > 0 && l.Memory == 0:
		return errdefs.InvalidArgumentf("You should always set the Memory limit when using Memoryswap limit, see usage")
	case l.MemorySwap > 0 && l.MemorySwap < l.Memory:
		return errdefs.InvalidArgumentf("Minimum memoryswap limit should be larger than memory limit, see usage")
	case l.Memory > 0 && l.MemoryReservation > l.Memory:
		return errdefs.InvalidArgumentf("Minimum memory limit can not be less than memory reservation limit, see usage")
	case l.NanoCPUs != 0 && (l.CPUQuota != 0 || l.CPUPeriod != 0):
		return errdefs.InvalidArgumentf("Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set")
	case l.NanoCPUs < 0:
		return errdefs.InvalidArgumentf("Range of CPUs is from 0.01 to the number of CPUs available")
	case l.CPUPeriod != 0 && (l.CPUPeriod < 1000 || l.CPUPeriod > 1000000):
		return errdefs.InvalidArgumentf("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	case l.CPUQuota > 0 && l.CPUQuota < 1000:
		return errdefs.InvalidArgumentf("CPU cfs quota can not be less than 1ms (i.e. 1000)")
	case l.CPUShares < 0:
		return errdefs.InvalidArgumentf("invalid CPU shares (%d): must be positive", l.CPUShares)
	case l.BlkioWeight != 0 && (l.BlkioWeight < 10 || l.BlkioWeight > 1000):
		return errdefs.InvalidArgumentf("Range of blkio weight is from 10 to 1000")
	}
	return nil
}

// Files translates limits to cgroup v2 interface files, in a fixed order.
func (l Limits) Files() []File {
	var out []File
	add := func(name string, v string) { out = append(out, File{name, v}) }
	if l.Memory > 0 {
		add("memory.max", strconv.FormatInt(l.Memory, 10))
	}
	if l.MemoryReservation > 0 {
		add("memory.low", strconv.FormatInt(l.MemoryReservation, 10))
	}
	if v, ok := swapMax(l.Memory, l.MemorySwap); ok {
		add("memory.swap.max", v)
	}
	if v, ok := cpuMax(l); ok {
		add("cpu.max", v)
	}
	if w := CPUWeight(l.CPUShares); w != 0 {
		add("cpu.weight", strconv.FormatUint(w, 10))
	}
	if l.CpusetCpus != "" {
		add("cpuset.cpus", l.CpusetCpus)
	}
	if l.CpusetMems != "" {
		add("cpuset.mems", l.CpusetMems)
	}
	switch {
	case l.PidsLimit > 0:
		add("pids.max", strconv.FormatInt(l.PidsLimit, 10))
	case l.PidsLimit < 0:
		add("pids.max", "max")
	}
	if w := IOWeight(l.BlkioWeight); w != 0 {
		add("io.weight", "default "+strconv.FormatUint(w, 10))
	}
	for _, line := range l.ioMax() {
		add("io.max", line)
	}
	return out
}

// swapMax is memory.swap.max for Docker's memory+swap total: -1 is no
// limit, a total is the swap above memory, and a memory limit alone allows
// as much swap again (Docker's default of twice the memory).
func swapMax(memory, total int64) (string, bool) {
	switch {
	case memory <= 0:
		return "", false
	case total < 0:
		return "max", true
	case total > 0:
		return strconv.FormatInt(total-memory, 10), true
	}
	return strconv.FormatInt(memory, 10), true
}

// cpuMax is cpu.max ("quota period") from --cpus or --cpu-quota/--cpu-period.
func cpuMax(l Limits) (string, bool) {
	const defaultPeriod = 100000
	switch {
	case l.NanoCPUs > 0:
		return fmt.Sprintf("%d %d", l.NanoCPUs*defaultPeriod/1e9, defaultPeriod), true
	case l.CPUQuota != 0 || l.CPUPeriod != 0:
		period := l.CPUPeriod
		if period == 0 {
			period = defaultPeriod
		}
		quota := "max"
		if l.CPUQuota > 0 {
			quota = strconv.FormatInt(l.CPUQuota, 10)
		}
		return quota + " " + strconv.FormatInt(period, 10), true
	}
	return "", false
}

// CPUWeight converts Docker's --cpu-shares (cgroup v1's 2..262144, 1024 by
// default) to cgroup v2's cpu.weight (1..10000, 100 by default), as runc
// and so Docker do since runc 1.3: a curve through the three points
// 2→1, 1024→100 and 262144→10000 that is quadratic in log2(shares). 0 is
// "not set".
func CPUWeight(shares int64) uint64 {
	switch {
	case shares <= 0:
		return 0
	case shares <= 2:
		return 1
	case shares >= 262144:
		return 10000
	}
	x := math.Log2(float64(shares))
	return uint64(math.Ceil(math.Pow(10, (x*x+125*x)/612-7.0/34)))
}

// IOWeight maps --blkio-weight (10..1000) onto io.weight (1..10000)
// linearly, as runc does. 0 is "not set".
func IOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	return 1 + (uint64(w)-10)*9999/990
}

// ioMax gives one io.max line per device: "MAJ:MIN rbps=.. wbps=..".
func (l Limits) ioMax() []string {
	type dev struct{ major, minor uint32 }
	keys := map[dev][]string{}
	var order []dev
	for _, set := range []struct {
		key string
		ts  []Throttle
	}{{"rbps", l.ReadBps}, {"wbps", l.WriteBps}, {"riops", l.ReadIOps}, {"wiops", l.WriteIOps}} {
		for _, t := range set.ts {
			d := dev{t.Major, t.Minor}
			if _, ok := keys[d]; !ok {
				order = append(order, d)
			}
			keys[d] = append(keys[d], fmt.Sprintf("%s=%d", set.key, t.Rate))
		}
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].major != order[j].major {
			return order[i].major < order[j].major
		}
		return order[i].minor < order[j].minor
	})
	var out []string
	for _, d := range order {
		out = append(out, fmt.Sprintf("%d:%d %s", d.major, d.minor, strings.Join(keys[d], " ")))
	}
	return out
}

// Only keeps the limits whose controller has reports true for.
func (l Limits) Only(has func(controller string) bool) Limits {
	if !has("memory") {
		l.Memory, l.MemorySwap, l.MemoryReservation = 0, 0, 0
	}
	if !has("cpu") {
		l.NanoCPUs, l.CPUQuota, l.CPUPeriod, l.CPUShares = 0, 0, 0, 0
	}
	if !has("cpuset") {
		l.CpusetCpus, l.CpusetMems = "", ""
	}
	if !has("pids") {
		l.PidsLimit = 0
	}
	if !has("io") {
		l.BlkioWeight, l.ReadBps, l.WriteBps, l.ReadIOps, l.WriteIOps = 0, nil, nil, nil, nil
	}
	return l
}

// Controllers lists the controllers the limits need, each once.
func (l Limits) Controllers() []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range l.Files() {
		c, _, _ := strings.Cut(f.Name, ".")
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// Apply writes limits to the cgroup at dir. A swap limit on a kernel
// without swap accounting is left out, as Docker leaves it out.
func Apply(dir string, l Limits) error {
	for _, f := range l.Files() {
		err := writeFile(dir, f.Name, f.Value)
		if f.Name == "memory.swap.max" && errors.Is(err, os.ErrNotExist) && dirExists(dir) {
			continue
		}
		if err != nil {
			return fmt.Errorf("setting %s of %s: %w", f.Name, filepath.Base(dir), err)
		}
	}
	return nil
}

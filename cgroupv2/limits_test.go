package cgroupv2

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lodge-containers/lodge/errdefs"
)

func TestCPUWeight(t *testing.T) {
	for _, tc := range []struct {
		shares int64
		want   uint64
	}{
		{0, 0}, {1, 1}, {2, 1}, {512, 59}, {1024, 100}, {2048, 174}, {262144, 10000}, {1 << 20, 10000},
	} {
		if got := CPUWeight(tc.shares); got != tc.want {
			t.Errorf("CPUWeight(%d) = %d, want %d", tc.shares, got, tc.want)
		}
	}
}

func TestIOWeight(t *testing.T) {
	for _, tc := range []struct {
		w    uint16
		want uint64
	}{{0, 0}, {10, 1}, {500, 4950}, {1000, 10000}} {
		if got := IOWeight(tc.w); got != tc.want {
			t.Errorf("IOWeight(%d) = %d, want %d", tc.w, got, tc.want)
		}
	}
}

const mib = 1024 * 1024

func TestLimitsFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    Limits
		want []File
	}{
		{"none", Limits{}, nil},
		{"memory alone allows as much swap", Limits{Memory: 64 * mib}, []File{{"memory.max", "67108864"}, {"memory.swap.max", "67108864"}}},
		{"memory-swap equal to memory: no swap", Limits{Memory: 64 * mib, MemorySwap: 64 * mib}, []File{{"memory.max", "67108864"}, {"memory.swap.max", "0"}}},
		{"unlimited swap", Limits{Memory: 64 * mib, MemorySwap: -1}, []File{{"memory.max", "67108864"}, {"memory.swap.max", "max"}}},
		{"unlimited swap without memory is no limit", Limits{MemorySwap: -1}, nil},
		{"reservation", Limits{MemoryReservation: 32 * mib}, []File{{"memory.low", "33554432"}}},
		{"cpus", Limits{NanoCPUs: 500000000}, []File{{"cpu.max", "50000 100000"}}},
		{"cpus 1.5", Limits{NanoCPUs: 1500000000}, []File{{"cpu.max", "150000 100000"}}},
		{"quota and period", Limits{CPUQuota: 25000, CPUPeriod: 50000}, []File{{"cpu.max", "25000 50000"}}},
		{"quota alone", Limits{CPUQuota: 25000}, []File{{"cpu.max", "25000 100000"}}},
		{"period alone", Limits{CPUPeriod: 50000}, []File{{"cpu.max", "max 50000"}}},
		{"shares", Limits{CPUShares: 512}, []File{{"cpu.weight", "59"}}},
		{"cpuset", Limits{CpusetCpus: "0-1", CpusetMems: "0"}, []File{{"cpuset.cpus", "0-1"}, {"cpuset.mems", "0"}}},
		{"pids", Limits{PidsLimit: 50}, []File{{"pids.max", "50"}}},
		{"pids unlimited", Limits{PidsLimit: -1}, []File{{"pids.max", "max"}}},
		{"blkio weight", Limits{BlkioWeight: 300}, []File{{"io.weight", "default 2930"}}},
		{"throttles, one line per device", Limits{
			ReadBps:   []Throttle{{8, 0, 1048576}, {7, 1, 10}},
			WriteIOps: []Throttle{{8, 0, 100}},
		}, []File{{"io.max", "7:1 rbps=10"}, {"io.max", "8:0 rbps=1048576 wiops=100"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.l.Files(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Files() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLimitsControllers(t *testing.T) {
	l := Limits{Memory: 64 * mib, NanoCPUs: 1e9, CPUShares: 512, PidsLimit: 10, CpusetCpus: "0", BlkioWeight: 300}
	if got, want := l.Controllers(), []string{"memory", "cpu", "cpuset", "pids", "io"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Controllers() = %q, want %q", got, want)
	}
	if got := (Limits{}).Controllers(); len(got) != 0 {
		t.Errorf("no limits need %q", got)
	}
}

func TestLimitsOnly(t *testing.T) {
	l := Limits{Memory: 64 * mib, NanoCPUs: 1e9, PidsLimit: 10, CpusetCpus: "0", BlkioWeight: 300}
	got := l.Only(func(c string) bool { return c == "pids" })
	if !reflect.DeepEqual(got, Limits{PidsLimit: 10}) {
		t.Errorf("Only(pids) = %+v", got)
	}
}

func TestLimitsValidate(t *testing.T) {
	for _, tc := range []struct {
		l    Limits
		want string
	}{
		{Limits{Memory: 1024}, "Minimum memory limit allowed is 6MB"},
		{Limits{MemorySwap: 64 * mib}, "always set the Memory limit"},
		{Limits{Memory: 64 * mib, MemorySwap: 32 * mib}, "memoryswap limit should be larger"},
		{Limits{Memory: 32 * mib, MemoryReservation: 64 * mib}, "memory reservation"},
		{Limits{NanoCPUs: 1e9, CPUQuota: 1000}, "Conflicting options"},
		{Limits{CPUPeriod: 10}, "CPU cfs period"},
		{Limits{BlkioWeight: 5}, "blkio weight"},
		{Limits{Memory: 64 * mib, MemorySwap: -1, NanoCPUs: 5e8, PidsLimit: 5}, ""},
	} {
		err := tc.l.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.l, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%+v: got %v, want an invalid argument saying %q", tc.l, err, tc.want)
		}
	}
}

// fakeCgroup makes a directory with the given interface files (empty), as
// the kernel would show a cgroup with some controllers.
func fakeCgroup(t *testing.T, dir string, files ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestApply(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	fakeCgroup(t, dir, "memory.max", "memory.low", "cpu.max", "cpu.weight", "pids.max", "io.weight")
	l := Limits{Memory: 64 * mib, MemorySwap: 64 * mib, MemoryReservation: 16 * mib, NanoCPUs: 5e8, CPUShares: 512, PidsLimit: 50, BlkioWeight: 300}
	if err := Apply(dir, l); err != nil {
		t.Fatal(err) // memory.swap.max is absent: no swap accounting, left out
	}
	for file, want := range map[string]string{
		"memory.max": "67108864", "memory.low": "16777216", "cpu.max": "50000 100000",
		"cpu.weight": "59", "pids.max": "50", "io.weight": "default 2930",
	} {
		if got := readFile(t, filepath.Join(dir, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if err := Apply(dir, Limits{CpusetCpus: "0"}); err == nil {
		t.Error("a missing cpuset.cpus is not an error")
	}
}

func TestTreeCreate(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	fakeCgroup(t, base, "cgroup.subtree_control", "cgroup.procs")
	tree := &Tree{dir: base, controllers: []string{"cpu", "pids"}}

	_, err := tree.Create("abc", Limits{Memory: 64 * mib})
	if err == nil || !strings.Contains(err.Error(), "memory cgroup controller is not delegated") || !strings.Contains(err.Error(), "Delegate=cpu cpuset io memory pids") {
		t.Fatalf("memory limit without the controller: %v", err)
	}
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("not classed unavailable: %v", err)
	}

	// The kernel makes the children's files; the fake has them beforehand.
	fakeCgroup(t, filepath.Join(base, "containers"), "cgroup.subtree_control")
	fakeCgroup(t, filepath.Join(base, "containers", "abc"), "pids.max", "cpu.max")
	dir, err := tree.Create("abc", Limits{PidsLimit: 10, NanoCPUs: 1e9})
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "pids.max")); got != "10" {
		t.Errorf("pids.max = %q", got)
	}
	if !dirExists(filepath.Join(base, "monitors")) {
		t.Error("no monitors leaf")
	}
	if got := readFile(t, filepath.Join(base, "cgroup.subtree_control")); got != "+pids +cpu" && got != "+cpu +pids" {
		t.Errorf("base subtree_control = %q", got)
	}
	if got := readFile(t, filepath.Join(base, "containers", "cgroup.subtree_control")); got != "+pids +cpu" && got != "+cpu +pids" {
		t.Errorf("containers subtree_control = %q", got)
	}
	// Without limits, the cgroup is made with no controller asked for.
	dir, err = tree.Create("def", Limits{})
	if err != nil || dir != tree.ContainerDir("def") || !dirExists(dir) {
		t.Fatalf("create without limits: %q, %v", dir, err)
	}
}

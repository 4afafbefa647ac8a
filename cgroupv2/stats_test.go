package cgroupv2

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Real-format files, as a kernel 6.x writes them.
const (
	cpuStat = "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\nnr_periods 10\nnr_throttled 2\nthrottled_usec 5000\nnr_bursts 0\nburst_usec 0\n"
	memStat = "anon 1048576\nfile 4096\nkernel 8192\nactive_anon 0\ninactive_anon 1048576\nactive_file 0\ninactive_file 4096\n"
	ioStat  = "8:0 rbytes=1024 wbytes=2048 rios=3 wios=4 dbytes=0 dios=0\n253:1 rbytes=1 wbytes=2 rios=5 wios=6\n"
	events  = "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadStats(t *testing.T) {
	t.Run("all controllers", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{
			"cpu.stat": cpuStat, "memory.current": "2097152\n", "memory.max": "67108864\n", "memory.stat": memStat,
			"memory.events": events, "pids.current": "3\n", "pids.max": "max\n", "io.stat": ioStat,
		})
		s, err := ReadStats(dir)
		if err != nil {
			t.Fatal(err)
		}
		if s.CPUUsageUsec != 123456 || s.CPUUserUsec != 100000 || s.CPUSystemUsec != 23456 || s.NrThrottled != 2 || s.ThrottledUsec != 5000 {
			t.Errorf("cpu: %+v", s)
		}
		if !s.HasMemory || s.MemoryUsage != 2097152 || s.MemoryLimit != 67108864 || s.MemoryStat["inactive_file"] != 4096 || s.OOMKills != 1 {
			t.Errorf("memory: %+v", s)
		}
		if s.Pids != 3 || s.PidsLimit != 0 {
			t.Errorf("pids: %d/%d", s.Pids, s.PidsLimit)
		}
		if len(s.IO) != 2 || s.IO[0] != (IOStat{8, 0, 1024, 2048, 3, 4}) || s.IO[1] != (IOStat{253, 1, 1, 2, 5, 6}) {
			t.Errorf("io: %+v", s.IO)
		}
	})
	t.Run("no controllers, as on a hybrid machine", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"cpu.stat": "usage_usec 42\nuser_usec 40\nsystem_usec 2\n", "cgroup.threads": "10\n11\n12\n"})
		s, err := ReadStats(dir)
		if err != nil {
			t.Fatal(err)
		}
		if s.CPUUsageUsec != 42 || s.HasMemory || s.Pids != 3 || s.IO != nil {
			t.Errorf("%+v", s)
		}
	})
	t.Run("gone", func(t *testing.T) {
		if _, err := ReadStats(filepath.Join(t.TempDir(), "nope")); err == nil {
			t.Error("no error for a missing cgroup")
		}
	})
}

func TestOOMKills(t *testing.T) {
	dir := t.TempDir()
	if OOMKills(dir) != 0 {
		t.Error("oom kills without memory.events")
	}
	writeFiles(t, dir, map[string]string{"memory.events": events})
	if OOMKills(dir) != 1 {
		t.Error("oom_kill not read")
	}
}

func TestFreeze(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"cgroup.freeze": "0\n", "cgroup.events": "populated 1\nfrozen 0\n"})
	// The fake kernel: it reports frozen a moment after the write.
	go func() {
		time.Sleep(20 * time.Millisecond)
		os.WriteFile(filepath.Join(dir, "cgroup.events"), []byte("populated 1\nfrozen 1\n"), 0o644)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Freeze(ctx, dir, true); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(dir, "cgroup.freeze")) != "1" {
		t.Error("cgroup.freeze not written")
	}
	if f, _ := Frozen(dir); !f {
		t.Error("not frozen")
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := Freeze(short, dir, false); err == nil {
		t.Error("thaw returned before the kernel said so")
	}
	os.Remove(filepath.Join(dir, "cgroup.freeze"))
	if err := Freeze(ctx, dir, true); err == nil {
		t.Error("no error without cgroup.freeze")
	}
}

func TestEnterLeaf(t *testing.T) {
	old := isCgroup2
	isCgroup2 = func(p string) bool { _, err := os.Stat(filepath.Join(p, ".cgroup2")); return err == nil }
	t.Cleanup(func() { isCgroup2 = old })
	root, ps := fakeTree(t, "unified", "/deleg/s1", "")
	own := filepath.Join(root, "unified", "deleg", "s1")
	os.WriteFile(filepath.Join(own, "cgroup.procs"), []byte("4242\n"), 0o644)
	// The kernel would make the leaf's cgroup.procs; the fake has it ready.
	fakeCgroup(t, filepath.Join(own, DaemonLeaf), "cgroup.procs")
	if err := EnterLeaf(root, ps); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(own, DaemonLeaf, "cgroup.procs")); got != "4242" {
		t.Errorf("the other process was not moved: %q", got) // the fake keeps the last write
	}
	// Once in the leaf, the base is the cgroup above it.
	os.WriteFile(ps, []byte("0::/deleg/s1/"+DaemonLeaf+"\n"), 0o644)
	s, err := Detect(root, ps)
	if err != nil {
		t.Fatal(err)
	}
	if s.Base != "/deleg/s1" || s.Dir() != own {
		t.Errorf("base %q dir %q", s.Base, s.Dir())
	}
}

func TestSystemCPUUsage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "stat")
	os.WriteFile(p, []byte("cpu  100 1 50 1000 5 0 2 0 0 0\ncpu0 50 1 25 500 2 0 1 0 0 0\ncpu1 50 0 25 500 3 0 1 0 0 0\nintr 1 2\n"), 0o644)
	n, cpus, err := SystemCPUUsage(p)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1158*1e7 || cpus != 2 {
		t.Errorf("got %d ns, %d cpus", n, cpus)
	}
}

// BenchmarkSample measures one stats sample as lodged takes it for a
// container: its cgroup's files (real-format content; without the memory
// controller, the resident sets of its processes from /proc, here this
// process and its parent) and the machine's CPU time from /proc/stat.
func BenchmarkSample(b *testing.B) {
	procs := fmt.Sprintf("%d\n%d\n", os.Getpid(), os.Getppid())
	for _, bc := range []struct {
		name  string
		files map[string]string
	}{
		{"controllers", map[string]string{
			"cpu.stat": cpuStat, "memory.current": "2097152\n", "memory.max": "67108864\n", "memory.stat": memStat,
			"memory.events": events, "pids.current": "3\n", "pids.max": "max\n", "io.stat": ioStat, "cgroup.procs": procs,
		}},
		{"no-controllers", map[string]string{"cpu.stat": cpuStat, "cgroup.threads": "1\n2\n3\n", "cgroup.procs": procs}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			for name, content := range bc.files {
				os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ReadStats(dir); err != nil {
					b.Fatal(err)
				}
				if _, _, err := SystemCPUUsage("/proc/stat"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

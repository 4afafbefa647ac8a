package stats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/errdefs"
)

type fakeContainers map[string]Target

func (f fakeContainers) Proc(ref string) (Target, error) {
	if t, ok := f[ref]; ok {
		return t, nil
	}
	return Target{}, errdefs.NotFoundf("No such container: %s", ref)
}

type dirs string

func (d dirs) ContainerDir(string) string { return string(d) }

// TestStatsAndTop: without a delegated cgroup, stats are a 501 that says
// why; a stopped container gives one empty sample and no processes; a
// running one's sample names it and top lists its init.
func TestStatsAndTop(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"cpu.stat":     "usage_usec 2000\nuser_usec 1000\nsystem_usec 1000\n",
		"cgroup.procs": fmt.Sprintf("%d\n", os.Getpid()),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cs := fakeContainers{
		"up":   {ID: "u1", Name: "up", Running: true, Pid: os.Getpid()},
		"down": {ID: "d1", Name: "down"},
	}
	var got []container.StatsResponse
	send := func(r container.StatsResponse) error { got = append(got, r); return nil }
	if err := New(cs, nil, "no delegation here").Stats(context.Background(), "up", Options{OneShot: true}, send); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("stats without cgroups: %v, want 501", err)
	}
	s := New(cs, dirs(dir), "")
	if err := s.Stats(context.Background(), "down", Options{}, send); err != nil || len(got) != 1 || got[0].ID != "d1" || got[0].Name != "/down" || got[0].CPUStats.CPUUsage.TotalUsage != 0 {
		t.Errorf("stopped: %+v %v", got, err)
	}
	got = nil
	if err := s.Stats(context.Background(), "up", Options{OneShot: true}, send); err != nil || len(got) != 1 || got[0].Name != "/up" || got[0].CPUStats.CPUUsage.TotalUsage != 2000000 {
		t.Errorf("running: %+v %v", got, err)
	}
	if _, err := s.Top(context.Background(), "down", ""); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("top of a stopped container: %v, want a conflict", err)
	}
	top, err := s.Top(context.Background(), "up", "")
	if err != nil || len(top.Processes) == 0 || top.Processes[0][1] != fmt.Sprint(os.Getpid()) {
		t.Errorf("top: %+v %v", top, err)
	}
	if _, err := s.Top(context.Background(), "gone", ""); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("top of an unknown container: %v", err)
	}
}

// BenchmarkStatsSample is one sample of a container as GET .../stats sends
// it on this machine (no controllers: cpu.stat, cgroup.threads, resident
// sets of its processes, /proc/stat), encoded as JSON.
func BenchmarkStatsSample(b *testing.B) {
	dir := b.TempDir()
	for name, content := range map[string]string{
		"cpu.stat":       "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n",
		"cgroup.threads": "1\n2\n",
		"cgroup.procs":   fmt.Sprintf("%d\n%d\n", os.Getpid(), os.Getppid()),
	} {
		os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	}
	b.ReportAllocs()
	for b.Loop() {
		st, err := sample(dir, os.Getpid())
		if err != nil {
			b.Fatal(err)
		}
		if err := json.NewEncoder(io.Discard).Encode(st); err != nil {
			b.Fatal(err)
		}
	}
}

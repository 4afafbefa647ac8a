package daemon

import (
	"errors"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/cgroupv2"
	"github.com/lodge-containers/lodge/errdefs"
)

// fakeTree has the controllers it is given and records what it is asked.
type fakeTree struct {
	controllers map[string]bool
	updated     cgroupv2.Limits
}

func (f *fakeTree) Has(c string) bool { return f.controllers[c] }
func (f *fakeTree) Create(id string, l cgroupv2.Limits) (string, error) {
	return "/fake/" + id, nil
}
func (f *fakeTree) Update(id string, l cgroupv2.Limits) error { f.updated = l; return nil }
func (f *fakeTree) ContainerDir(id string) string             { return "/fake/" + id }
func (f *fakeTree) MonitorsDir() string                       { return "/fake/monitors" }

func TestLimitsFrom(t *testing.T) {
	pids, swappiness := int64(20), int64(10)
	l, warnings, err := limitsFrom(container.Resources{Memory: 64 << 20, NanoCPUs: 5e8, PidsLimit: &pids, MemorySwappiness: &swappiness})
	if err != nil {
		t.Fatal(err)
	}
	if l.Memory != 64<<20 || l.NanoCPUs != 5e8 || l.PidsLimit != 20 {
		t.Errorf("limits %+v", l)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "swappiness") {
		t.Errorf("warnings %q", warnings)
	}
	unlimited := int64(-1)
	if l, _, _ := limitsFrom(container.Resources{PidsLimit: &unlimited}); l.PidsLimit != 0 {
		t.Errorf("--pids-limit -1 is a limit: %+v", l)
	}
	for _, r := range []container.Resources{
		{CgroupParent: "x"}, {CPURealtimeRuntime: 10}, {DeviceCgroupRules: []string{"c 1:3 rwm"}}, {Memory: 1}, {NanoCPUs: 1, CPUQuota: 1000},
	} {
		if _, _, err := limitsFrom(r); err == nil {
			t.Errorf("%+v accepted", r)
		}
	}
}

func TestCheckLimits(t *testing.T) {
	l := cgroupv2.Limits{Memory: 64 << 20, PidsLimit: 5}
	for _, tc := range []struct {
		name     string
		tree     CgroupTree
		warn     bool
		wantErr  string
		warnings int
	}{
		{"no delegation refuses", nil, false, "the memory cgroup controller is not delegated", 0},
		{"missing memory refuses", &fakeTree{controllers: map[string]bool{"pids": true}}, false, "the memory cgroup controller", 0},
		{"warn mode warns once a controller", nil, true, "", 2},
		{"everything delegated", &fakeTree{controllers: map[string]bool{"pids": true, "memory": true}}, false, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := cgroupCtl{tree: tc.tree, warn: tc.warn}
			warnings, err := g.checkLimits(l)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, errdefs.ErrUnavailable) {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(warnings) != tc.warnings {
				t.Fatalf("got %q, %v", warnings, err)
			}
		})
	}
}

func TestMergeResources(t *testing.T) {
	pids := int64(10)
	old := container.Resources{Memory: 64 << 20, MemorySwap: 96 << 20, NanoCPUs: 1e9, PidsLimit: &pids, CpusetCpus: "0"}
	r := mergeResources(old, container.Resources{Memory: 128 << 20, CPUQuota: 50000})
	if r.Memory != 128<<20 || r.MemorySwap != 0 || r.NanoCPUs != 0 || r.CPUQuota != 50000 || r.PidsLimit != &pids || r.CpusetCpus != "0" {
		t.Errorf("merged %+v", r)
	}
	if r := mergeResources(old, container.Resources{CpusetCpus: "1"}); r.Memory != old.Memory || r.MemorySwap != old.MemorySwap || r.CpusetCpus != "1" {
		t.Errorf("an update of one field changed others: %+v", r)
	}
}

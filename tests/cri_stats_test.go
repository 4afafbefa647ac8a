package tests

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const statsPod = `{
  "metadata": {"name": "stats", "namespace": "default", "uid": "crictl-stats-1", "attempt": 0},
  "labels": {"app": "stats"}
}`

// statsCtr uses some CPU, then keeps a few MiB of memory in a shell
// variable while it sleeps.
const statsCtr = `{
  "metadata": {"name": "busy", "attempt": 0},
  "image": {"image": "busybox:latest"},
  "command": ["sh", "-c", "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; x=$(head -c 4000000 /dev/zero | tr '\\0' a); echo ready; sleep 600; echo ${#x}"],
  "labels": {"tier": "busy"}
}`

// criValue is a protobuf UInt64Value as crictl's JSON prints it.
type criValue struct {
	Value string `json:"value"`
}

func (v criValue) n(t *testing.T) uint64 {
	t.Helper()
	if v.Value == "" {
		return 0
	}
	n, err := strconv.ParseUint(v.Value, 10, 64)
	if err != nil {
		t.Fatalf("a stats value %q: %v", v.Value, err)
	}
	return n
}

type criContainerStats struct {
	Attributes struct {
		ID       string `json:"id"`
		Metadata struct{ Name string }
		Labels   map[string]string
	}
	CPU struct {
		Timestamp            string   `json:"timestamp"`
		UsageCoreNanoSeconds criValue `json:"usageCoreNanoSeconds"`
	} `json:"cpu"`
	Memory struct {
		Timestamp       string   `json:"timestamp"`
		WorkingSetBytes criValue `json:"workingSetBytes"`
	} `json:"memory"`
}

// TestCRIStatsAndUpdate: crictl stats and statsp read a running pod's CPU
// and memory from lodge's cgroups, and crictl update changes a running
// container's memory limit in its cgroup (or, where the memory
// controller is not delegated, is refused saying so).
func TestCRIStatsAndUpdate(t *testing.T) {
	s, docker := cgroupSession(t)
	t.Cleanup(func() {
		if ids := strings.Fields(s.run(docker, "ps", "-aq").stdout); len(ids) > 0 {
			s.run(docker, append([]string{"rm", "-f"}, ids...)...)
		}
	})
	cc, ccRun := crictlFor(t, s)
	dir := s.buildDir("crictl-stats", map[string]string{"pod.json": statsPod, "ctr.json": statsCtr})
	podJSON := filepath.Join(dir, "pod.json")
	pod := strings.TrimSpace(cc("runp", podJSON))
	ctr := strings.TrimSpace(cc("create", pod, filepath.Join(dir, "ctr.json"), podJSON))
	cc("start", ctr)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(s.run(docker, "logs", ctr).stdout, "ready") {
		if time.Now().After(deadline) {
			t.Fatalf("the container never got ready: %s", s.run(docker, "logs", ctr))
		}
		time.Sleep(200 * time.Millisecond)
	}

	var cs struct{ Stats []criContainerStats }
	if err := json.Unmarshal([]byte(cc("stats", "-o", "json", "--id", ctr)), &cs); err != nil {
		t.Fatal(err)
	}
	if len(cs.Stats) != 1 {
		t.Fatalf("crictl stats --id: %d stats, want 1", len(cs.Stats))
	}
	st := cs.Stats[0]
	if st.Attributes.ID != ctr || st.Attributes.Metadata.Name != "busy" || st.Attributes.Labels["tier"] != "busy" {
		t.Errorf("stats attributes: %+v", st.Attributes)
	}
	if cpu := st.CPU.UsageCoreNanoSeconds.n(t); cpu < 1e6 {
		t.Errorf("CPU used: %d ns, want the loop's (over 1ms)", cpu)
	}
	if ws := st.Memory.WorkingSetBytes.n(t); ws < 4e6 {
		t.Errorf("working set: %d bytes, want over the 4 MB the shell holds", ws)
	}
	if st.CPU.Timestamp == "" || st.Memory.Timestamp == "" {
		t.Errorf("stats without timestamps: %+v", st)
	}
	if out := cc("stats", "--label", "tier=other", "-o", "json"); strings.Contains(out, ctr) {
		t.Errorf("crictl stats --label tier=other lists the container:\n%s", out)
	}

	var ps struct {
		Stats []struct {
			Attributes struct {
				ID string `json:"id"`
			}
			Linux struct {
				CPU struct {
					UsageCoreNanoSeconds criValue `json:"usageCoreNanoSeconds"`
				} `json:"cpu"`
				Memory struct {
					WorkingSetBytes criValue `json:"workingSetBytes"`
				} `json:"memory"`
				Process struct {
					ProcessCount criValue `json:"processCount"`
				} `json:"process"`
				Containers []criContainerStats
			}
		}
	}
	if err := json.Unmarshal([]byte(cc("statsp", "-o", "json", "--id", pod)), &ps); err != nil {
		t.Fatal(err)
	}
	if len(ps.Stats) != 1 || ps.Stats[0].Attributes.ID != pod {
		t.Fatalf("crictl statsp --id: %+v", ps)
	}
	pl := ps.Stats[0].Linux
	if pl.CPU.UsageCoreNanoSeconds.n(t) < st.CPU.UsageCoreNanoSeconds.n(t) || pl.Memory.WorkingSetBytes.n(t) < 4e6 {
		t.Errorf("the pod's use is below its container's: %+v", pl)
	}
	if n := pl.Process.ProcessCount.n(t); n < 2 {
		t.Errorf("the pod's processes: %d, want pause and sleep at least", n)
	}
	if len(pl.Containers) != 1 || pl.Containers[0].Attributes.ID != ctr {
		t.Errorf("the pod's containers in statsp: %+v", pl.Containers)
	}

	// crictl update: the memory limit lands in the running container's
	// cgroup, as docker update's does.
	controllers := strings.Fields(readTrim(t, filepath.Join(s.cgroup, "cgroup.controllers")))
	hasMemory := false
	for _, c := range controllers {
		hasMemory = hasMemory || c == "memory"
	}
	r := ccRun("update", "--memory", "67108864", ctr)
	if hasMemory {
		if r.code != 0 {
			t.Fatalf("crictl update --memory: %s", r)
		}
		if got := readTrim(t, filepath.Join(s.cgroup, "containers", ctr, "memory.max")); got != "67108864" {
			t.Errorf("memory.max after crictl update = %q", got)
		}
		if got := strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.HostConfig.Memory}}", ctr).stdout); got != "67108864" {
			t.Errorf("docker inspect's memory after crictl update = %q", got)
		}
	} else if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "memory") {
		t.Errorf("crictl update --memory without a delegated memory controller (%v): want a refusal naming it, got %s", controllers, r)
	}
	cc("stopp", pod)
	cc("rmp", pod)
}

const groupsCtr = `{
  "metadata": {"name": "groups", "attempt": 0},
  "image": {"image": "busybox:latest"},
  "command": ["sleep", "600"],
  "linux": {"security_context": {"supplemental_groups": [1234, 5678]}}
}`

// TestCRISupplementalGroups: a container's supplemental groups are its
// execs' too (the kubelet's probes and crictl exec see them), as
// Docker's exec gives a container's --group-add groups.
func TestCRISupplementalGroups(t *testing.T) {
	s, _ := compatSession(t)
	cc, _ := crictlFor(t, s)
	dir := s.buildDir("crictl-groups", map[string]string{"pod.json": statsPod, "ctr.json": groupsCtr})
	podJSON := filepath.Join(dir, "pod.json")
	pod := strings.TrimSpace(cc("runp", podJSON))
	ctr := strings.TrimSpace(cc("create", pod, filepath.Join(dir, "ctr.json"), podJSON))
	cc("start", ctr)
	groups := strings.Fields(cc("exec", "-s", ctr, "id", "-G"))
	if !slices.Contains(groups, "1234") || !slices.Contains(groups, "5678") {
		t.Errorf("id -G in the container: %q, want 1234 and 5678 among them", groups)
	}
	cc("stopp", pod)
	cc("rmp", pod)
}

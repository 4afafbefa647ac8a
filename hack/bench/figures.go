package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// timeIt runs f reps times and returns the durations in milliseconds.
func timeIt(reps int, f func() error) (stats, error) {
	var s stats
	for i := 0; i < reps; i++ {
		t0 := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		s = append(s, float64(time.Since(t0).Microseconds())/1000)
	}
	return s, nil
}

// kernelFloor is what the namespaces alone cost.
func kernelFloor(e *env, reps int) []result {
	home, run := e.dirFor("kernel")
	s, err := timeIt(reps, func() error {
		return runCmd(e.command(e.userEnv(home, run), "unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "true")).err
	})
	r := result{Figure: "kernel floor: unshare -Urmpf true", Unit: "ms"}
	if err != nil {
		r.Notes = append(r.Notes, "unshare failed: "+err.Error())
		return []result{r}
	}
	r.Lodge = ptr(s.median())
	r.Notes = append(r.Notes, "not an engine: the cost any engine pays for its namespaces")
	return []result{r}
}

// daemonStart is lodged's start until its socket answers.
func daemonStart(e *env, reps int) []result {
	r := result{Figure: "daemon start until the API answers", Unit: "ms"}
	home, run := e.dirFor("daemonstart")
	envv := e.userEnv(home, run)
	s, err := timeIt(reps, func() error {
		if o := runCmd(e.command(envv, "lodge", "daemon", "start")); o.err != nil {
			return fmt.Errorf("%s", o)
		}
		t := time.Now()
		defer func() { _ = t }()
		return runCmd(e.command(envv, "lodge", "daemon", "stop")).err
	})
	if err != nil {
		r.Notes = append(r.Notes, err.Error())
		return []result{r}
	}
	r.Lodge = ptr(s.median())
	r.Notes = append(r.Notes, "includes `lodge daemon stop`; the anchors start through systemd or a script and are not compared")
	return []result{r}
}

// runTrue is `docker run --rm busybox true` through the docker CLI, on
// each engine, interleaved.
func runTrue(e *env, reps int) []result {
	r := result{Figure: "docker run --rm busybox true", Unit: "ms", P99: map[string]string{}}
	series := map[string]stats{}
	for i := 0; i < reps+1; i++ {
		for _, eng := range e.engines {
			if eng.why != "" {
				continue
			}
			t0 := time.Now()
			o := e.docker(eng, "run", "--rm", "busybox", "true")
			d := float64(time.Since(t0).Microseconds()) / 1000
			if o.err != nil {
				r.Notes = append(r.Notes, eng.name+": "+o.String())
				eng.why = "run failed"
				continue
			}
			if i > 0 { // the first run warms caches
				series[eng.name] = append(series[eng.name], d)
			}
		}
	}
	set := func(name string, dst **float64) {
		if s, ok := series[name]; ok && len(s) > 0 {
			*dst = ptr(s.median())
			r.P99[name] = strconv.FormatFloat(s.pct(99), 'f', 1, 64)
		}
	}
	set("lodge", &r.Lodge)
	set("docker", &r.Docker)
	set("podman", &r.Podman)
	return []result{finish(r)}
}

// idleMemory is the resident memory of each engine's processes at rest.
func idleMemory(e *env, reps int) []result {
	r := result{Figure: "idle daemon RSS (all its processes)", Unit: "MiB"}
	if eng := e.engine("lodge"); eng != nil {
		var pids []int
		for _, f := range []string{"lodged.pid", "keeper.pid"} {
			if b, err := os.ReadFile(filepath.Join(eng.run, "lodge", f)); err == nil {
				if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					pids = append(pids, p)
				}
			}
		}
		r.Lodge = ptr(rssTree(pids))
	}
	if eng := e.engine("docker"); eng != nil && eng.cmd != nil {
		r.Docker = ptr(rssTree([]int{eng.cmd.Process.Pid}))
	}
	if eng := e.engine("podman"); eng != nil && eng.cmd != nil {
		r.Podman = ptr(rssTree([]int{eng.cmd.Process.Pid}))
	}
	return []result{finish(r)}
}

// rssTree sums VmRSS of pids and all their descendants, in MiB.
func rssTree(pids []int) float64 {
	all := map[int]bool{}
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, en := range ents {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + en.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], pid)
		}
	}
	queue := append([]int(nil), pids...)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if all[p] {
			continue
		}
		all[p] = true
		queue = append(queue, children[p]...)
	}
	var kb float64
	for p := range all {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				n, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
				kb += n
			}
		}
	}
	return kb / 1024
}

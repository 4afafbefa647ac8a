package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/lodge-containers/lodge/proc"
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
	home, run, err := e.dirFor("kernel")
	if err != nil {
		return []result{{Figure: "kernel floor: unshare -Urmpf true", Unit: "ms", Notes: []string{err.Error()}}}
	}
	s, err := timeIt(reps, func() error {
		return runCmd(e.command(e.userEnv(home, run), "unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "true")).err
	})
	r := result{Figure: "kernel floor: unshare -Urmpf true", Unit: "ms"}
	if err != nil {
		r.Notes = append(r.Notes, "unshare failed: "+err.Error())
		return []result{r}
	}
	setSeries(&r, map[string]stats{"lodge": s})
	r.Notes = append(r.Notes, "not an engine: the cost any engine pays for its namespaces")
	return []result{r, clientFloor(e, home, run, reps)}
}

// clientFloor is what the docker CLI costs before it sends anything:
// every row timed through it pays this once per command, whatever the
// engine, so a ratio of two such rows understates how far apart the
// engines' own shares are.
func clientFloor(e *env, home, run string, reps int) result {
	r := result{Figure: "client floor: docker --version (no daemon asked)", Unit: "ms"}
	s, err := timeIt(reps, func() error {
		return runCmd(e.command(e.userEnv(home, run), "docker", "--version")).err
	})
	if err != nil {
		r.Notes = append(r.Notes, "docker --version failed: "+err.Error())
		return r
	}
	setSeries(&r, map[string]stats{"lodge": s})
	r.Notes = append(r.Notes, "not an engine: the docker CLI's own start, paid by every row timed through it")
	return r
}

// daemonStart is lodged's start until its socket answers.
func daemonStart(e *env, reps int) []result {
	r := result{Figure: "daemon start until the API answers", Unit: "ms"}
	home, run, err := e.dirFor("daemonstart")
	if err != nil {
		r.Notes = append(r.Notes, err.Error())
		return []result{r}
	}
	envv := e.userEnv(home, run)
	s, err := timeIt(reps, func() error {
		if o := runCmd(e.command(envv, "lodge", "daemon", "start")); o.err != nil {
			return fmt.Errorf("%s", o)
		}
		return runCmd(e.command(envv, "lodge", "daemon", "stop")).err
	})
	if err != nil {
		r.Notes = append(r.Notes, err.Error())
		return []result{r}
	}
	setSeries(&r, map[string]stats{"lodge": s})
	r.Notes = append(r.Notes, "includes `lodge daemon stop`; the anchors start through systemd or a script and are not compared")
	return []result{r}
}

// runTrue is `docker run --rm busybox true` through the docker CLI, on
// each engine, interleaved.
func runTrue(e *env, reps int) []result {
	r := result{Figure: "docker run --rm busybox true", Unit: "ms"}
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
	setSeries(&r, series)
	return append([]result{finish(r)}, execFigures(e, reps)...)
}

// execFigures are `docker exec c true` in a running container, each
// engine's container started once before the timed runs, and the same
// exec through the Go client.
func execFigures(e *env, reps int) []result {
	r := result{Figure: "docker exec c true (running container)", Unit: "ms"}
	api := result{Figure: "exec of true via the Go client (no CLI)", Unit: "ms"}
	series, apiSeries := map[string]stats{}, map[string]stats{}
	const name = execContainer
	var running []*engine
	for _, eng := range e.engines {
		if eng.why != "" {
			continue
		}
		if o := e.docker(eng, "run", "-d", "--name", name, "busybox", "sleep", "1d"); o.err != nil {
			r.Notes = append(r.Notes, eng.name+": "+o.String())
			continue
		}
		defer e.docker(eng, "rm", "-f", name)
		running = append(running, eng)
	}
	for i := 0; i < reps+1; i++ {
		for _, eng := range running {
			t0 := time.Now()
			o := e.docker(eng, "exec", name, "true")
			d := float64(time.Since(t0).Microseconds()) / 1000
			if o.err != nil {
				r.Notes = append(r.Notes, eng.name+": "+o.String())
				continue
			}
			if i > 0 { // the first exec warms caches
				series[eng.name] = append(series[eng.name], d)
			}
		}
	}
	for _, eng := range running {
		if ms, err := e.apiSamples(eng, "exec", max(reps, 1)*4); err != nil {
			api.Notes = append(api.Notes, eng.name+": "+err.Error())
		} else {
			apiSeries[eng.name] = ms
		}
	}
	setSeries(&r, series)
	setSeries(&api, apiSeries)
	r.Notes = append(r.Notes, "the docker CLI against each engine; lodge runs the exec's process through lodge-exec (C, static), not a Go program; the first exec, which makes the container's exec plan, is not timed")
	api.Notes = append(api.Notes, "the engine's own share of docker exec: create, attach until the streams end, inspect, as the CLI does, without the CLI's start")
	return []result{finish(r), finish(api)}
}

// idleMemory is the resident memory of each engine's processes at rest:
// right after the groups before it, and again after a rest with no
// request (long enough for lodged to release its code pages, and for the
// anchors to do whatever they do at rest).
func idleMemory(e *env, reps int) []result {
	r := result{Figure: "idle daemon RSS (all its processes)", Unit: "MiB"}
	pss := result{Figure: "idle daemon PSS (all its processes, shared pages split)", Unit: "MiB"}
	measure(e, reps, &r, &pss)
	time.Sleep(restFor)
	rr := result{Figure: fmt.Sprintf("idle daemon RSS after %s at rest", restFor), Unit: "MiB"}
	rpss := result{Figure: fmt.Sprintf("idle daemon PSS after %s at rest", restFor), Unit: "MiB"}
	measure(e, reps, &rr, &rpss)
	// Once settled: the rest above holds what each engine does after
	// its start or a burst of work.
	before := engineTicks(e)
	time.Sleep(cpuRestFor)
	cpu := cpuAtRest(e, before, cpuRestFor)
	return append([]result{finish(r), finish(pss), finish(rr), finish(rpss), cpu}, perContainerMemory(e, reps)...)
}

// engineTicks is the CPU time (cpuTicks) of each engine's processes, by
// engine and pid.
func engineTicks(e *env) map[string]map[int]float64 {
	out := map[string]map[int]float64{}
	for _, eng := range e.engines {
		if eng.why != "" {
			continue
		}
		roots := eng.rootPids()
		m := map[int]float64{}
		for _, p := range append(roots, proc.Descendants(roots...)...) {
			m[p] = cpuTicks(p)
		}
		out[eng.name] = m
	}
	return out
}

// cpuAtRest is the CPU each engine's processes used over a rest of d that
// began with before, in ms per minute: what an engine nobody talks to
// costs the machine (and a laptop's battery). Processes that ended in
// between are left out.
func cpuAtRest(e *env, before map[string]map[int]float64, d time.Duration) result {
	r := result{Figure: fmt.Sprintf("CPU at rest, all its processes (%s after %s at rest, no container)", d, restFor), Unit: "ms/min"}
	after := engineTicks(e)
	series := map[string]stats{}
	for name, m := range after {
		var ticks float64
		for p, t := range m {
			if t0, ok := before[name][p]; ok {
				ticks += t - t0
			}
		}
		// Clock ticks are 10 ms (USER_HZ 100).
		series[name] = stats{ticks * 10 * float64(time.Minute) / float64(d)}
	}
	setSeries(&r, series)
	r.Notes = append(r.Notes, "utime+stime (and reaped children's) from /proc/PID/stat, in 10 ms clock ticks")
	return finish(r)
}

// restFor is the rest before the second idle figure: lodged releases its
// code pages after 30 s without a request.
const restFor = 40 * time.Second

// cpuRestFor is how long the CPU at rest is measured, after restFor.
const cpuRestFor = 30 * time.Second

// measure sets r and pss to each engine's RSS and PSS, reps samples.
func measure(e *env, reps int, r, pss *result) {
	rs, psss := map[string]stats{}, map[string]stats{}
	for i := 0; i < max(reps, 1); i++ {
		if i > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		for _, eng := range e.engines {
			if eng.why != "" {
				continue
			}
			rs[eng.name] = append(rs[eng.name], rssTree(eng.rootPids(), nil))
			psss[eng.name] = append(psss[eng.name], pssTree(eng.rootPids(), nil))
		}
	}
	setSeries(r, rs)
	setSeries(pss, psss)
}

// rssTree sums VmRSS of pids and all their descendants, in MiB, leaving
// out the processes in skip and their descendants.
func rssTree(pids []int, skip map[int]bool) float64 {
	return sumTree(pids, skip, func(p int) string { return proc.StatusField(p, "VmRSS") })
}

// pssTree is rssTree with each page shared by n processes counted 1/n in
// each (smaps_rollup's Pss): what the processes really add together.
func pssTree(pids []int, skip map[int]bool) float64 {
	return sumTree(pids, skip, func(p int) string { return proc.RollupField(p, "Pss") })
}

func sumTree(pids []int, skip map[int]bool, kbOf func(pid int) string) float64 {
	skipped := map[int]bool{}
	for p := range skip {
		skipped[p] = true
		for _, d := range proc.Descendants(p) {
			skipped[d] = true
		}
	}
	var kb float64
	for _, p := range append(append([]int(nil), pids...), proc.Descendants(pids...)...) {
		if skipped[p] {
			continue
		}
		skipped[p] = true // count each process once
		n, _ := strconv.ParseFloat(kbOf(p), 64)
		kb += n
	}
	return kb / 1024
}

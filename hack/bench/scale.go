package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/lodge-containers/lodge/proc"
)

// nativeRun is each engine's own CLI: `lodge run --rm`, `docker run --rm`
// against Docker rootless, `podman run --rm` (no service in between).
func nativeRun(e *env, reps int) []result {
	r := result{Figure: "own CLI: run --rm busybox true (lodge, docker, podman)", Unit: "ms"}
	series := map[string]stats{}
	for i := 0; i < reps+1; i++ {
		for _, eng := range e.engines {
			if eng.why != "" {
				continue
			}
			var o out
			t0 := time.Now()
			switch eng.name {
			case "lodge":
				o = runCmd(e.command(e.userEnv(eng.home, eng.run), "lodge", "run", "--rm", "busybox", "true"))
			case "docker":
				o = e.docker(eng, "run", "--rm", "busybox", "true")
			case "podman":
				// Podman reads DOCKER_CONFIG for credentials and fails when
				// the file it names is missing.
				o = runCmd(e.command(without(e.userEnv(eng.home, eng.run), "DOCKER_CONFIG"), "podman", "run", "--rm", "busybox", "true"))
			}
			d := float64(time.Since(t0).Microseconds()) / 1000
			if o.err != nil {
				r.Notes = append(r.Notes, eng.name+": "+o.String())
				continue
			}
			if i > 0 {
				series[eng.name] = append(series[eng.name], d)
			}
		}
	}
	setSeries(&r, series)
	return []result{finish(r)}
}

// without drops one variable from an environment.
func without(env []string, key string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// setSeries puts each engine's median in r, its p99 (the bad side's: the
// low one for a rate) in r.P99 and its sample count in r.Samples.
func setSeries(r *result, series map[string]stats) {
	for name, s := range series {
		if len(s) == 0 {
			continue
		}
		set(r, name, s.median())
		if r.P99 == nil {
			r.P99, r.Samples = map[string]float64{}, map[string]int{}
		}
		p := 99.0
		if r.HigherIsBetter {
			p = 1
		}
		r.P99[name] = s.pct(p)
		r.Samples[name] = len(s)
	}
}

// psMany is `docker ps -a` with 500 created containers on each engine.
func psMany(e *env, reps int) []result {
	const n = 500
	r := result{Figure: fmt.Sprintf("docker ps -a with %d containers", n), Unit: "ms"}
	api := result{Figure: fmt.Sprintf("list of all %d containers via the Go client (no CLI)", n), Unit: "ms"}
	series, apiSeries := map[string]stats{}, map[string]stats{}
	for _, eng := range e.engines {
		if eng.why != "" {
			continue
		}
		if err := e.userLoop(eng, "create", n); err != nil {
			r.Notes = append(r.Notes, eng.name+": creating the containers: "+err.Error())
			continue
		}
		s, err := timeIt(reps, func() error {
			o := e.docker(eng, "ps", "-a", "-q")
			if o.err == nil && strings.Count(o.stdout, "\n") < n {
				return fmt.Errorf("ps -a listed %d containers, want %d", strings.Count(o.stdout, "\n"), n)
			}
			return o.err
		})
		if err != nil {
			r.Notes = append(r.Notes, eng.name+": "+err.Error())
		} else {
			series[eng.name] = s
		}
		if ms, err := e.apiSamples(eng, "list", max(reps, 1)*10); err != nil {
			api.Notes = append(api.Notes, eng.name+": "+err.Error())
		} else {
			apiSeries[eng.name] = ms
		}
		if err := e.userLoop(eng, "clear", 0); err != nil {
			r.Notes = append(r.Notes, eng.name+": removing the containers: "+err.Error())
		}
	}
	setSeries(&r, series)
	setSeries(&api, apiSeries)
	api.Notes = append(api.Notes, "the engine's own share of docker ps: the same list without the CLI's start (the client floor) and table")
	return []result{finish(r), finish(api)}
}

// perContainerMemory is what each running container adds to its engine's
// resident memory, its monitor included (lodge-monitor, containerd-shim,
// conmon) and its own processes left out: with 50 `sleep` containers
// running, the growth of the daemon's process tree and of the containers'
// parents, over 50.
func perContainerMemory(e *env, reps int) []result {
	const n = 50
	r := result{Figure: fmt.Sprintf("RSS per running container (monitor included), %d running", n), Unit: "MiB"}
	pss := result{Figure: fmt.Sprintf("PSS per running container (shared pages split), %d running", n), Unit: "MiB"}
	rs, psss := map[string]stats{}, map[string]stats{}
	for _, eng := range e.engines {
		if eng.why != "" {
			continue
		}
		m, err := e.runningMemory(eng, n, reps)
		if err != nil {
			r.Notes = append(r.Notes, eng.name+": "+err.Error())
		} else {
			rs[eng.name], psss[eng.name] = m.perRSS, m.perPSS
		}
		if err := e.userLoop(eng, "clear", 0); err != nil {
			r.Notes = append(r.Notes, eng.name+": removing the containers: "+err.Error())
		}
	}
	setSeries(&r, rs)
	setSeries(&pss, psss)
	return []result{finish(r), finish(pss)}
}

// memSeries is an engine's memory with n containers running, sampled
// several times: per container (its growth over the idle engine, over n)
// and all of the engine's processes (daemon, helpers, monitors; the
// containers' own processes left out).
type memSeries struct{ perRSS, perPSS, totRSS, totPSS stats }

// runningMemory starts n `sleep` containers on eng and samples its memory
// reps times, 200 ms apart. The containers stay; the caller removes them.
func (e *env) runningMemory(eng *engine, n, reps int) (memSeries, error) {
	var m memSeries
	before, beforePss := rssTree(eng.rootPids(), nil), pssTree(eng.rootPids(), nil)
	if err := e.userLoop(eng, "start", n); err != nil {
		return m, fmt.Errorf("starting the containers: %w", err)
	}
	o := e.docker(eng, "ps", "-q")
	ids := strings.Fields(o.stdout)
	inspect := e.docker(eng, append([]string{"inspect", "-f", "{{.State.Pid}}"}, ids...)...)
	containers := map[int]bool{}
	roots := eng.rootPids()
	for _, f := range strings.Fields(inspect.stdout) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			continue
		}
		containers[pid] = true
		if st, err := proc.ReadStat(pid); err == nil {
			roots = append(roots, st.PPID) // the monitor, shim or conmon
		}
	}
	if len(containers) < n {
		return m, fmt.Errorf("%d of %d containers running (%s)", len(containers), n, strings.TrimSpace(inspect.stderr))
	}
	// The same rest as before the idle figure the growth is taken from:
	// lodged releases the code the starts mapped back after 30 s without
	// a request, and that code is the daemon's, not the containers'.
	time.Sleep(restFor)
	for i := 0; i < max(reps, 1); i++ {
		if i > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		rss, pss := rssTree(roots, containers), pssTree(roots, containers)
		m.totRSS = append(m.totRSS, rss)
		m.totPSS = append(m.totPSS, pss)
		m.perRSS = append(m.perRSS, (rss-before)/float64(n))
		m.perPSS = append(m.perPSS, (pss-beforePss)/float64(n))
	}
	return m, nil
}

// set puts an engine's figure in r.
func set(r *result, engine string, v float64) {
	switch engine {
	case "lodge":
		r.Lodge = ptr(v)
	case "docker":
		r.Docker = ptr(v)
	case "podman":
		r.Podman = ptr(v)
	case "containerd":
		r.Containerd = ptr(v)
	}
}

// rootPids are the processes an engine's memory is counted from: lodge's
// daemon and keeper, the anchors' service processes.
func (eng *engine) rootPids() []int {
	if eng.name == "lodge" {
		var pids []int
		for _, f := range []string{"lodged.pid", "keeper.pid"} {
			if b, err := os.ReadFile(filepath.Join(eng.run, "lodge", f)); err == nil {
				if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					pids = append(pids, p)
				}
			}
		}
		return pids
	}
	if eng.cmd != nil && eng.cmd.Process != nil {
		return []int{eng.cmd.Process.Pid}
	}
	return nil
}

// userLoop runs an -api-loop mode as the user and checks that it worked.
func (e *env) userLoop(eng *engine, mode string, n int) error {
	bin, err := e.selfForUser()
	if err != nil {
		return err
	}
	o := runLimit(e.command(e.userEnv(eng.home, eng.run), bin, "-api-loop", mode, "-api-host", "unix://"+eng.sock, "-n", strconv.Itoa(n)), scaleLimit)
	if o.err != nil {
		return fmt.Errorf("%s", o)
	}
	return nil
}

// scaleLoop is the child side of the scale figures: "create" makes n
// containers, "start" runs n `sleep` containers, "clear" removes every
// container. Eight requests go at a time.
func scaleLoop(c *client.Client, mode string, n int) error {
	ctx := context.Background()
	if mode == "clear" {
		list, err := c.ContainerList(ctx, client.ContainerListOptions{All: true})
		if err != nil {
			return err
		}
		return parallel(len(list.Items), func(i int) error {
			_, err := c.ContainerRemove(ctx, list.Items[i].ID, client.ContainerRemoveOptions{Force: true})
			return err
		})
	}
	cmd := []string{"true"}
	if mode == "start" {
		cmd = []string{"sleep", "100000"}
	}
	return parallel(n, func(int) error {
		res, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: "busybox", Cmd: cmd}})
		if err != nil || mode != "start" {
			return err
		}
		_, err = c.ContainerStart(ctx, res.ID, client.ContainerStartOptions{})
		return err
	})
}

// parallel runs f(0..n-1), eight at a time, and returns the first error.
func parallel(n int, f func(i int) error) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			errs <- f(i)
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

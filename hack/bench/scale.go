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
	r := result{Figure: "own CLI: run --rm busybox true (lodge, docker, podman)", Unit: "ms", P99: map[string]string{}}
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

// setSeries puts each engine's median in r and its p99 in r.P99.
func setSeries(r *result, series map[string]stats) {
	for name, s := range series {
		if len(s) == 0 {
			continue
		}
		v := ptr(s.median())
		switch name {
		case "lodge":
			r.Lodge = v
		case "docker":
			r.Docker = v
		case "podman":
			r.Podman = v
		}
		if r.P99 != nil {
			r.P99[name] = strconv.FormatFloat(s.pct(99), 'f', 1, 64)
		}
	}
}

// psMany is `docker ps -a` with 500 created containers on each engine.
func psMany(e *env, reps int) []result {
	const n = 500
	r := result{Figure: fmt.Sprintf("docker ps -a with %d containers", n), Unit: "ms", P99: map[string]string{}}
	series := map[string]stats{}
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
		if err := e.userLoop(eng, "clear", 0); err != nil {
			r.Notes = append(r.Notes, eng.name+": removing the containers: "+err.Error())
		}
	}
	setSeries(&r, series)
	return []result{finish(r)}
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
	for _, eng := range e.engines {
		if eng.why != "" {
			continue
		}
		before, beforePss := rssTree(eng.rootPids(), nil), pssTree(eng.rootPids(), nil)
		if err := e.userLoop(eng, "start", n); err != nil {
			r.Notes = append(r.Notes, eng.name+": starting the containers: "+err.Error())
			continue
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
			r.Notes = append(r.Notes, fmt.Sprintf("%s: %d of %d containers running (%s)", eng.name, len(containers), n, strings.TrimSpace(inspect.stderr)))
		} else {
			set(&r, eng.name, (rssTree(roots, containers)-before)/n)
			set(&pss, eng.name, (pssTree(roots, containers)-beforePss)/n)
		}
		if err := e.userLoop(eng, "clear", 0); err != nil {
			r.Notes = append(r.Notes, eng.name+": removing the containers: "+err.Error())
		}
	}
	return []result{finish(r), finish(pss)}
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
	o := runCmd(e.command(e.userEnv(eng.home, eng.run), bin, "-api-loop", mode, "-api-host", "unix://"+eng.sock, "-n", strconv.Itoa(n)))
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

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// The API figures run the Go client as the benchmark user (the engines'
// sockets answer only their owner): the bench binary re-runs itself with
// -api-loop, which measures and prints JSON.

// apiLoop is the child side: mode "cycle" times create+start+wait+remove
// n times in a row; "concurrent" starts n containers at once and times
// until all have run and are removed; "list" times n lists of all
// containers; "exec" times n execs of true in the running container
// execContainer.
func apiLoop(host, mode string, n int) error {
	c, err := client.New(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	switch mode {
	case "create", "start", "clear":
		return scaleLoop(c, mode, n)
	}
	ctx := context.Background()
	cycle := func() error {
		res, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}})
		if err != nil {
			return err
		}
		wait := c.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
		if _, err := c.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
			return err
		}
		select {
		case <-wait.Result:
		case err := <-wait.Error:
			return err
		}
		_, err = c.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true})
		return err
	}
	var ms []float64
	switch mode {
	case "cycle":
		if err := cycle(); err != nil { // warm-up
			return err
		}
		for i := 0; i < n; i++ {
			t0 := time.Now()
			if err := cycle(); err != nil {
				return err
			}
			ms = append(ms, float64(time.Since(t0).Microseconds())/1000)
		}
	case "exec":
		// As docker exec does: create, attach (which starts it) until the
		// streams end, then the exit code.
		for i := 0; i < n+1; i++ {
			t0 := time.Now()
			if err := execTrue(ctx, c, execContainer); err != nil {
				return err
			}
			if i > 0 { // the first makes lodge's exec plan
				ms = append(ms, float64(time.Since(t0).Microseconds())/1000)
			}
		}
	case "list":
		for i := 0; i < n; i++ {
			t0 := time.Now()
			if _, err := c.ContainerList(ctx, client.ContainerListOptions{All: true}); err != nil {
				return err
			}
			ms = append(ms, float64(time.Since(t0).Microseconds())/1000)
		}
	case "concurrent":
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- cycle() }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				return err
			}
		}
		ms = append(ms, float64(time.Since(t0).Microseconds())/1000)
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	return json.NewEncoder(os.Stdout).Encode(ms)
}

// execContainer is the running container the exec figures exec in.
const execContainer = "bench-exec"

// execTrue runs true in the container through the API, as docker exec
// does, and fails unless it exits 0.
func execTrue(ctx context.Context, c *client.Client, ctr string) error {
	ex, err := c.ExecCreate(ctx, ctr, client.ExecCreateOptions{Cmd: []string{"true"}, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return err
	}
	att, err := c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, att.Reader)
	att.Close()
	if err != nil {
		return err
	}
	in, err := c.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil {
		return err
	}
	if in.Running || in.ExitCode != 0 {
		return fmt.Errorf("exec of true: running %v, exit code %d", in.Running, in.ExitCode)
	}
	return nil
}

// selfForUser copies the bench binary where the benchmark user can run it.
func (e *env) selfForUser() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	dst := filepath.Join(e.bin, "lodge-bench")
	if fileExists(dst) {
		return dst, nil
	}
	in, err := os.Open(self)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", err
	}
	return dst, out.Close()
}

// apiFigure runs apiLoop on every engine, times times in a row, and
// reports the median and p99 of every sample.
func apiFigure(e *env, figure, mode string, n, times int) result {
	r := result{Figure: figure, Unit: "ms"}
	series := map[string]stats{}
	for i := 0; i < times; i++ {
		for _, eng := range e.engines {
			if eng.why != "" {
				continue
			}
			ms, err := e.apiSamples(eng, mode, n)
			if err != nil {
				r.Notes = append(r.Notes, eng.name+": "+err.Error())
				continue
			}
			series[eng.name] = append(series[eng.name], ms...)
		}
	}
	setSeries(&r, series)
	return finish(r)
}

// apiSamples runs apiLoop's mode on eng as the benchmark user.
func (e *env) apiSamples(eng *engine, mode string, n int) (stats, error) {
	bin, err := e.selfForUser()
	if err != nil {
		return nil, fmt.Errorf("cannot run the client as the user: %w", err)
	}
	o := runCmd(e.command(e.userEnv(eng.home, eng.run), bin, "-api-loop", mode, "-api-host", "unix://"+eng.sock, "-n", strconv.Itoa(n)))
	var ms stats
	if o.err != nil || json.Unmarshal([]byte(strings.TrimSpace(o.stdout)), &ms) != nil || len(ms) == 0 {
		return nil, fmt.Errorf("%s", o.String())
	}
	return ms, nil
}

func apiCycle(e *env, reps int) []result {
	return []result{
		apiFigure(e, "create+start+wait+rm via the Go client, 200 cycles in a row", "cycle", 200, 1),
		apiFigure(e, "50 containers run concurrently via the Go client (wall)", "concurrent", 50, max(reps/2, 3)),
	}
}

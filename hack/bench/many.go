package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The scale group's sizes (flags, so a quick check can shrink them).
var (
	scaleContainers = 200
	scaleImages     = 1000
	scaleClients    = 20
)

// scaleLimit bounds each engine's part of a scale figure: Docker rootless
// and Podman take minutes at these sizes, an engine that hangs must not
// hold the run.
const scaleLimit = 10 * time.Minute

// scaleBench is the scale group: many running containers (memory, `docker
// ps`, `docker stats --no-stream`), many concurrent clients, many images.
// The engines take turns, so one engine's 200 containers do not load the
// machine while another is measured.
func scaleBench(e *env, reps int) []result {
	rs := runningScale(e, reps)
	rs = append(rs, concurrentClients(e, reps)...)
	return append(rs, manyImages(e, reps)...)
}

// runningScale is the figures with scaleContainers `sleep` containers
// running on one engine at a time.
func runningScale(e *env, reps int) []result {
	n := scaleContainers
	per := result{Figure: fmt.Sprintf("RSS per running container (monitor included), %d running", n), Unit: "MiB"}
	perPss := result{Figure: fmt.Sprintf("PSS per running container, %d running", n), Unit: "MiB"}
	tot := result{Figure: fmt.Sprintf("engine's processes RSS, %d running (containers' own processes left out)", n), Unit: "MiB"}
	totPss := result{Figure: fmt.Sprintf("engine's processes PSS, %d running", n), Unit: "MiB"}
	ps := result{Figure: fmt.Sprintf("docker ps with %d running", n), Unit: "ms"}
	st := result{Figure: fmt.Sprintf("docker stats --no-stream with %d running", n), Unit: "ms"}
	series := map[*result]map[string]stats{&per: {}, &perPss: {}, &tot: {}, &totPss: {}, &ps: {}, &st: {}}
	for _, eng := range e.engines {
		if eng.why != "" {
			continue
		}
		m, err := e.runningMemory(eng, n, reps)
		if err != nil {
			per.Notes = append(per.Notes, eng.name+": "+err.Error())
		} else {
			series[&per][eng.name], series[&perPss][eng.name] = m.perRSS, m.perPSS
			series[&tot][eng.name], series[&totPss][eng.name] = m.totRSS, m.totPSS
			// One call each before timing: the first warms the CLI's and
			// the engine's caches.
			list := func(args ...string) func() error {
				return func() error {
					o := e.dockerLimit(eng, time.Minute, args...)
					if o.err == nil && lines(o.stdout) < n {
						return fmt.Errorf("%s listed %d containers, want %d", strings.Join(args, " "), lines(o.stdout), n)
					}
					if o.err != nil {
						return fmt.Errorf("%s", o)
					}
					return nil
				}
			}
			for _, f := range []struct {
				r    *result
				args []string
			}{
				{&ps, []string{"ps"}},
				{&st, []string{"stats", "--no-stream"}},
			} {
				if err := list(f.args...)(); err != nil {
					f.r.Notes = append(f.r.Notes, eng.name+": "+err.Error())
					continue
				}
				if s, err := timeIt(reps, list(f.args...)); err != nil {
					f.r.Notes = append(f.r.Notes, eng.name+": "+err.Error())
				} else {
					series[f.r][eng.name] = s
				}
			}
		}
		if err := e.userLoop(eng, "clear", 0); err != nil {
			per.Notes = append(per.Notes, eng.name+": removing the containers: "+err.Error())
		}
	}
	var out []result
	for _, r := range []*result{&per, &perPss, &tot, &totPss, &ps, &st} {
		setSeries(r, series[r])
		out = append(out, finish(*r))
	}
	out[0].Notes = append(out[0].Notes, "one engine at a time holds the containers; memory sampled once per repetition, 200 ms apart")
	return out
}

// lines counts the rows of a listing, its header included.
func lines(s string) int { return strings.Count(s, "\n") }

// concurrentClients is scaleClients docker CLIs, each looping `docker run
// --rm busybox true` max(reps, 3) times against one engine: the latency
// of each run and the runs per second of all of them together.
func concurrentClients(e *env, reps int) []result {
	c := scaleClients
	each := max(reps, 3)
	lat := result{Figure: fmt.Sprintf("%d clients looping docker run --rm busybox true: each run", c), Unit: "ms"}
	rate := result{Figure: fmt.Sprintf("%d clients looping docker run --rm busybox true: runs/s, all together", c), Unit: "runs/s", HigherIsBetter: true}
	lats, rates := map[string]stats{}, map[string]stats{}
	for _, eng := range e.engines {
		if eng.why != "" {
			continue
		}
		var mu sync.Mutex
		var s stats
		var failed int
		var firstErr string
		deadline := time.Now().Add(scaleLimit)
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := 0; i < c; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < each && time.Now().Before(deadline); j++ {
					t := time.Now()
					o := e.dockerLimit(eng, 5*time.Minute, "run", "--rm", "busybox", "true")
					d := ms(time.Since(t))
					mu.Lock()
					if o.err != nil {
						failed++
						if firstErr == "" {
							firstErr = o.String()
						}
					} else {
						s = append(s, d)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		wall := time.Since(t0)
		if failed > 0 {
			lat.Notes = append(lat.Notes, fmt.Sprintf("%s: %d of %d runs failed; the first: %s", eng.name, failed, failed+len(s), firstErr))
		}
		if len(s) > 0 {
			lats[eng.name] = s
			rates[eng.name] = stats{float64(len(s)) / wall.Seconds()}
		}
	}
	setSeries(&lat, lats)
	setSeries(&rate, rates)
	lat.Notes = append(lat.Notes, fmt.Sprintf("%d runs per client, one engine at a time; failed runs are left out of both figures", each))
	return []result{finish(lat), finish(rate)}
}

// manyImages is `docker images` with scaleImages images: distinct images
// (each its own config, so its own ID and record in the engine's store)
// sharing one tiny layer, loaded with one `docker load` of a multi-image
// archive. Tags of one image would let an engine list one record many
// times; `docker import` of a tar per image would cost each engine minutes
// of work the listing does not measure.
func manyImages(e *env, reps int) []result {
	n := scaleImages
	list := result{Figure: fmt.Sprintf("docker images with %d images", n), Unit: "ms"}
	load := result{Figure: fmt.Sprintf("docker load of %d small images in one archive", n), Unit: "ms"}
	archive, err := e.manyArchive(n)
	if err != nil {
		list.Notes = append(list.Notes, "making the archive: "+err.Error())
		return []result{list}
	}
	lists, loads := map[string]stats{}, map[string]stats{}
	for _, eng := range e.engines {
		if eng.why != "" {
			continue
		}
		t0 := time.Now()
		if o := e.dockerLimit(eng, scaleLimit, "load", "-q", "-i", archive); o.err != nil {
			load.Notes = append(load.Notes, eng.name+": "+o.String())
			continue
		}
		loads[eng.name] = stats{ms(time.Since(t0))}
		images := func() error {
			o := e.dockerLimit(eng, time.Minute, "images")
			if o.err != nil {
				return fmt.Errorf("%s", o)
			}
			if lines(o.stdout) < n+1 {
				return fmt.Errorf("docker images listed %d rows, want more than %d", lines(o.stdout)-1, n)
			}
			return nil
		}
		if err := images(); err != nil { // warm-up, and the check
			list.Notes = append(list.Notes, eng.name+": "+err.Error())
			continue
		}
		if s, err := timeIt(reps, images); err != nil {
			list.Notes = append(list.Notes, eng.name+": "+err.Error())
		} else {
			lists[eng.name] = s
		}
	}
	setSeries(&list, lists)
	setSeries(&load, loads)
	list.Notes = append(list.Notes, fmt.Sprintf("%d distinct images (own config and ID each) sharing one 1 KiB layer, plus busybox and what earlier groups left", n))
	return []result{finish(list), finish(load)}
}

// manyArchive writes a docker-archive of n distinct one-layer images,
// bench/many:0000 and on, readable by the benchmark's user.
func (e *env) manyArchive(n int) (string, error) {
	layer, err := random.Layer(1024, types.DockerLayer)
	if err != nil {
		return "", err
	}
	base, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return "", err
	}
	cf, err := base.ConfigFile()
	if err != nil {
		return "", err
	}
	imgs := map[name.Tag]v1.Image{}
	for i := 0; i < n; i++ {
		c := cf.DeepCopy()
		c.OS, c.Architecture = "linux", "amd64"
		c.Created = v1.Time{Time: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)}
		c.Config.Cmd = []string{"true"}
		c.Config.Labels = map[string]string{"bench.image": fmt.Sprint(i)}
		img, err := mutate.ConfigFile(base, c)
		if err != nil {
			return "", err
		}
		tag, err := name.NewTag(fmt.Sprintf("bench/many:%04d", i))
		if err != nil {
			return "", err
		}
		imgs[tag] = img
	}
	p := filepath.Join(e.base, "many.tar")
	if err := tarball.MultiWriteToFile(p, imgs); err != nil {
		return "", err
	}
	return p, os.Chmod(p, 0o644)
}

// dockerLimit is e.docker killed after d.
func (e *env) dockerLimit(eng *engine, d time.Duration, args ...string) out {
	cmd := e.command(append(e.userEnv(eng.home, eng.run), "DOCKER_HOST=unix://"+eng.sock), "docker", args...)
	return runLimit(cmd, d)
}

// runLimit is runCmd, the command's process group killed after d.
func runLimit(cmd *exec.Cmd, d time.Duration) out {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Start(); err != nil {
		return out{err: err}
	}
	pid := cmd.Process.Pid
	// The timer firing is reported below; a group already gone (ESRCH)
	// has ended by itself, as wanted.
	t := time.AfterFunc(d, func() {
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			fmt.Fprintln(os.Stderr, "bench: killing a command that overran:", err)
		}
	})
	err := cmd.Wait()
	if !t.Stop() {
		err = fmt.Errorf("killed after %s (%v)", d, err)
	}
	return out{so.String(), se.String(), err}
}

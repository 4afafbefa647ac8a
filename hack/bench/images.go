package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The image the pull and load figures move: six layers of random bytes
// (incompressible, so the figure is transfer, digest checks and
// extraction, not gzip), about 96 MiB, close to the 101 MiB / 6 layer
// image TESTING.md's anchor figures were taken with.
const (
	pullLayers     = 6
	pullLayerBytes = 16 << 20
	pullRepo       = "bench/pull:1"
)

// startRegistry serves an in-process registry on 127.0.0.1 holding the
// pull image, and writes the same image as a docker archive for the load
// figure. It returns the registry's address.
func (e *env) startRegistry() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	// It serves until the benchmark exits: Serve returns only then.
	go func() { _ = http.Serve(l, registry.New(registry.Logger(log.New(io.Discard, "", 0)))) }()
	addr := l.Addr().String()
	img, err := random.Image(pullLayerBytes, pullLayers)
	if err != nil {
		return "", err
	}
	ref, err := name.ParseReference(addr+"/"+pullRepo, name.Insecure)
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img); err != nil {
		return "", fmt.Errorf("pushing the pull image: %w", err)
	}
	e.pullArchive = filepath.Join(e.base, "pull.tar")
	tag, _ := name.NewTag(pullRepo)
	if err := tarball.WriteToFile(e.pullArchive, tag, img); err != nil {
		return "", err
	}
	// The test user loads it.
	if err := os.Chmod(e.pullArchive, 0o644); err != nil {
		return "", err
	}
	e.pullMiB = imageMiB(img)
	return addr, nil
}

func imageMiB(img v1.Image) float64 {
	ls, _ := img.Layers()
	var n int64
	for _, l := range ls {
		s, _ := l.Size()
		n += s
	}
	return float64(n) / (1 << 20)
}

// registryFor is the registry's address as the engine's daemon reaches it:
// Docker rootless pulls from inside its own network namespace, where the
// host's loopback is slirp4netns's 10.0.2.2.
func (e *env) registryFor(eng *engine) string {
	if eng.name == "docker" {
		return strings.Replace(e.registry, "127.0.0.1", "10.0.2.2", 1)
	}
	return e.registry
}

// pullAndLoad is pull throughput from a loopback registry and `docker
// load` of the same image, each into an engine that does not hold it.
func pullAndLoad(e *env, reps int) []result {
	if e.registry == "" {
		r := result{Figure: "docker pull from a loopback registry", Unit: "ms", Notes: []string{"no registry: " + e.registryWhy}}
		return []result{r}
	}
	what := fmt.Sprintf("%.0f MiB, %d layers", e.pullMiB, pullLayers)
	pull := result{Figure: "docker pull (" + what + ") from a loopback registry", Unit: "ms"}
	load := result{Figure: "docker load -i (" + what + ")", Unit: "ms"}
	pulls, loads := map[string]stats{}, map[string]stats{}
	for i := 0; i < reps; i++ {
		for _, eng := range e.engines {
			if eng.why != "" {
				continue
			}
			ref := e.registryFor(eng) + "/" + pullRepo
			e.docker(eng, "rmi", "-f", ref)
			t0 := time.Now()
			if o := e.docker(eng, "pull", "-q", ref); o.err != nil {
				pull.Notes = append(pull.Notes, eng.name+": "+o.String())
			} else {
				pulls[eng.name] = append(pulls[eng.name], ms(time.Since(t0)))
				e.docker(eng, "rmi", "-f", ref)
			}

			e.docker(eng, "rmi", "-f", pullRepo)
			t0 = time.Now()
			if o := e.docker(eng, "load", "-q", "-i", e.pullArchive); o.err != nil {
				load.Notes = append(load.Notes, eng.name+": "+o.String())
				continue
			}
			loads[eng.name] = append(loads[eng.name], ms(time.Since(t0)))
			e.docker(eng, "rmi", "-f", pullRepo)
		}
	}
	setSeries(&pull, pulls)
	setSeries(&load, loads)
	pull.Notes = append(pull.Notes, "each pull starts with the image and its layers removed; the registry serves from memory in the benchmark process")
	return []result{finish(pull), finish(load), throughput(pull, e.pullMiB)}
}

// throughput restates a pull's median as MiB/s. Bigger is better here, so
// it carries no lodge-over-anchor ratio; the pull row above has it.
func throughput(pull result, mib float64) result {
	r := result{Figure: "pull throughput", Unit: "MiB/s"}
	for _, p := range []struct {
		from *float64
		to   **float64
	}{{pull.Lodge, &r.Lodge}, {pull.Docker, &r.Docker}, {pull.Podman, &r.Podman}} {
		if p.from != nil && *p.from > 0 {
			*p.to = ptr(mib / (*p.from / 1000))
		}
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

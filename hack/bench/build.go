package main

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The build group: a three-stage, thirteen-step Dockerfile over a context
// of 2,000 files of random bytes (50 MiB, incompressible), built cold
// (--no-cache), rebuilt with nothing changed, and rebuilt after one file
// of the context changed; and the time a 200 MiB context takes to reach
// the first step, which is the context's trip to the daemon.
const (
	buildFiles     = 2000
	buildFileBytes = 25 << 10
	bigFiles       = 400
	bigFileBytes   = 512 << 10
	buildRepo      = "bench/build:1"
)

const benchDockerfile = `FROM busybox AS deps
RUN mkdir -p /deps && for i in $(seq 1 200); do echo dep$i > /deps/d$i; done
RUN echo deps-done > /deps/done
FROM busybox AS tools
RUN echo tool > /tool
FROM busybox
WORKDIR /app
COPY --from=deps /deps /deps
COPY --from=tools /tool /tool
COPY src /app/src
RUN ls /app/src | wc -l > /app/count
ENV MODE=bench
LABEL bench=build
CMD ["cat", "/app/count"]
`

// writeContexts makes the two contexts, owned by the benchmark's user.
func (e *env) writeContexts() (small, big string, err error) {
	small = filepath.Join(e.base, "build-ctx")
	big = filepath.Join(e.base, "build-big")
	write := func(dir string, n, size int, dockerfile string) error {
		src := filepath.Join(dir, "src")
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		buf := make([]byte, size)
		for i := 0; i < n; i++ {
			rand.Read(buf)
			if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%04d", i)), buf, 0o644); err != nil {
				return err
			}
		}
		return os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644)
	}
	if err := write(small, buildFiles, buildFileBytes, benchDockerfile); err != nil {
		return "", "", err
	}
	if err := write(big, bigFiles, bigFileBytes, "FROM busybox\nRUN true\n"); err != nil {
		return "", "", err
	}
	for _, d := range []string{small, big} {
		err := filepath.Walk(d, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Chown(p, e.uid, e.gid)
		})
		if err != nil {
			return "", "", err
		}
	}
	return small, big, nil
}

// buildRun is one build on one engine: the docker CLI's classic builder,
// or podman's own CLI (buildah) for Podman. firstStep is how long the
// first step's line took to show.
func (e *env) buildRun(eng *engine, dir string, args ...string) (total, firstStep time.Duration, err error) {
	var envv []string
	var argv []string
	name := "docker"
	if eng.name == "podman" {
		name = "podman"
		envv = e.userEnv(eng.home, eng.run)
		argv = append([]string{"build", "--layers"}, args...)
	} else {
		envv = append(e.userEnv(eng.home, eng.run), "DOCKER_HOST=unix://"+eng.sock, "DOCKER_BUILDKIT=0")
		argv = append([]string{"build"}, args...)
	}
	cmd := e.command(envv, name, append(argv, dir)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(stdout)
	var tail []string
	for sc.Scan() {
		line := sc.Text()
		if firstStep == 0 && (strings.HasPrefix(line, "Step 1/") || strings.HasPrefix(line, "STEP 1/")) {
			firstStep = time.Since(t0)
		}
		if tail = append(tail, line); len(tail) > 5 {
			tail = tail[1:]
		}
	}
	err = cmd.Wait()
	total = time.Since(t0)
	if err != nil {
		return 0, 0, fmt.Errorf("%v: %s %s", err, strings.Join(tail, "\n"), errb.String())
	}
	return total, firstStep, nil
}

// buildBench is the build group.
func buildBench(e *env, reps int) []result {
	what := fmt.Sprintf("3 stages, 13 steps, %d files / %d MiB context", buildFiles, buildFiles*buildFileBytes>>20)
	cold := result{Figure: "build, cold (" + what + ")", Unit: "ms"}
	same := result{Figure: "rebuild, nothing changed", Unit: "ms"}
	edit := result{Figure: "rebuild, one context file edited", Unit: "ms"}
	first := result{Figure: fmt.Sprintf("time to the first step, %d MiB context", bigFiles*bigFileBytes>>20), Unit: "ms"}
	small, big, err := e.writeContexts()
	if err != nil {
		cold.Notes = append(cold.Notes, "writing the contexts: "+err.Error())
		return []result{cold}
	}
	colds, sames, edits, firsts := map[string]stats{}, map[string]stats{}, map[string]stats{}, map[string]stats{}
	if reps > 3 {
		reps = 3 // each repetition moves 350 MiB per engine
	}
	note := func(r *result, eng *engine, err error) { r.Notes = append(r.Notes, eng.name+": "+err.Error()) }
	for i := 0; i < reps; i++ {
		for _, eng := range e.engines {
			if eng.why != "" {
				continue
			}
			rmi := func() {
				if eng.name == "podman" {
					runCmd(e.command(e.userEnv(eng.home, eng.run), "podman", "rmi", "-f", buildRepo))
					return
				}
				e.docker(eng, "rmi", "-f", buildRepo)
			}
			rmi()
			if d, _, err := e.buildRun(eng, small, "--no-cache", "-t", buildRepo); err != nil {
				note(&cold, eng, err)
				continue
			} else {
				colds[eng.name] = append(colds[eng.name], ms(d))
			}
			if d, _, err := e.buildRun(eng, small, "-t", buildRepo); err != nil {
				note(&same, eng, err)
			} else {
				sames[eng.name] = append(sames[eng.name], ms(d))
			}
			f := filepath.Join(small, "src", "f0000")
			if err := os.WriteFile(f, []byte(fmt.Sprintf("edited %s %d\n", eng.name, i)), 0o644); err != nil {
				note(&edit, eng, err)
			} else if d, _, err := e.buildRun(eng, small, "-t", buildRepo); err != nil {
				note(&edit, eng, err)
			} else {
				edits[eng.name] = append(edits[eng.name], ms(d))
			}
			rmi()
			if _, d, err := e.buildRun(eng, big, "--no-cache", "-t", "bench/big:1"); err != nil {
				note(&first, eng, err)
			} else {
				firsts[eng.name] = append(firsts[eng.name], ms(d))
			}
		}
	}
	setSeries(&cold, colds)
	setSeries(&same, sames)
	setSeries(&edit, edits)
	setSeries(&first, firsts)
	cold.Notes = append(cold.Notes, "docker: the classic builder (DOCKER_BUILDKIT=0); podman: podman build --layers")
	return []result{finish(cold), finish(same), finish(edit), finish(first)}
}

package tests

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The data-safety half of the torture suite (issue 16): many clients at
// once, and the daemon stage killed with -9 in the middle of changing the
// store (streams and bodies: torture_streams_test.go). Each test prints its figures with
// t.Logf ("torture: ..."); README's reliability section quotes them.

// tortureRounds is LODGE_TORTURE_ROUNDS, else def.
func tortureRounds(t *testing.T, def int) int {
	t.Helper()
	if v := os.Getenv("LODGE_TORTURE_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("LODGE_TORTURE_ROUNDS=%q: want a positive number", v)
		}
		return n
	}
	return def
}

// load runs clients concurrent docker CLI clients against lodged for d,
// each going round a mix of what compose and testcontainers do, and
// returns how many commands ran. A command that fails fails the test.
func (s *session) load(docker string, clients int, d time.Duration, tag string) int {
	s.t.Helper()
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ran := 0
	fails := 0
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				name := fmt.Sprintf("%s-%d-%d", tag, c, i)
				var cmds [][]string
				switch (c + i) % 6 {
				case 0:
					cmds = [][]string{{"run", "--rm", "busybox", "true"}}
				case 1:
					cmds = [][]string{{"exec", "server", "sh", "-c", "echo hi"}}
				case 2:
					cmds = [][]string{{"create", "--name", name, "-l", "load=1", "busybox", "true"}, {"inspect", name}, {"rm", name}}
				case 3:
					cmds = [][]string{{"volume", "create", name}, {"volume", "inspect", name}, {"volume", "rm", name}}
				case 4:
					cmds = [][]string{{"ps", "-a"}, {"images"}, {"image", "inspect", "busybox"}}
				case 5:
					cmds = [][]string{{"logs", "--tail", "5", "server"}, {"inspect", "server"}, {"version"}}
				}
				for _, args := range cmds {
					r := s.run(docker, args...)
					mu.Lock()
					ran++
					if r.code != 0 && fails < 10 {
						fails++
						s.t.Errorf("client %d: docker %s: %s", c, strings.Join(args, " "), r)
					}
					mu.Unlock()
				}
			}
		}(c)
	}
	wg.Wait()
	return ran
}

// TestTortureConcurrentClients: 20 clients for 60 s, twice (LODGE_TORTURE_
// CONTAINERS and LODGE_TORTURE_SECONDS change that). Afterwards lodged's
// heap, goroutines and fds are back near where they were before the
// first: nothing a request made is kept (the exec table among them).
func TestTortureConcurrentClients(t *testing.T) {
	s, docker := containerSession(t)
	clients, secs := 20, 60
	if v, err := strconv.Atoi(os.Getenv("LODGE_TORTURE_CONTAINERS")); err == nil && v > 0 {
		clients = v
	}
	if v, err := strconv.Atoi(os.Getenv("LODGE_TORTURE_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	s.must(docker, "run", "-d", "--name", "server", "busybox", "sh", "-c", "while true; do echo tick; sleep 1; done")
	defer s.run(docker, "rm", "-f", "server") // a running container rightly outlives lodged
	// One round of everything first: what lodged builds once (caches,
	// pools) belongs to the baseline.
	s.load(docker, 6, time.Second, "warm")
	time.Sleep(12 * time.Second) // idle connections' timeouts
	base := s.figures()
	s.saveHeapProfile("heap-base.pb.gz")
	t.Logf("torture: %d clients, %d s, twice; baseline: %s", clients, secs, base)
	var after []debugFigures
	for round := 1; round <= 2; round++ {
		n := s.load(docker, clients, time.Duration(secs)*time.Second, fmt.Sprintf("r%d", round))
		want := base
		want.Goroutines++
		f, _ := s.settled(want, 30*time.Second)
		after = append(after, f)
		t.Logf("torture: round %d: %d commands; after it: %s", round, n, f)
		s.saveHeapProfile(fmt.Sprintf("heap-round%d.pb.gz", round))
	}
	last := after[1]
	// Allowances: a few MiB of heap the runtime and the store's caches
	// hold (measured: see README), nothing of fds and goroutines.
	const slack = 6 << 20
	if last.MemStats.HeapInuse > base.MemStats.HeapInuse+slack {
		t.Errorf("heap in use %.1f MiB after two rounds, %.1f before the first (%.1f after the first)",
			mib(last.MemStats.HeapInuse), mib(base.MemStats.HeapInuse), mib(after[0].MemStats.HeapInuse))
	}
	if last.MemStats.HeapInuse > after[0].MemStats.HeapInuse+slack/2 {
		t.Errorf("heap grows round over round: %.1f MiB after the first, %.1f after the second",
			mib(after[0].MemStats.HeapInuse), mib(last.MemStats.HeapInuse))
	}
	if last.OpenFDs > base.OpenFDs || last.Goroutines > base.Goroutines+1 {
		t.Errorf("after two rounds: %s; before: %s\n%s", last, base, s.goroutineDump())
	}
	if out := s.must(docker, "ps", "-aq", "--filter", "label=load=1").stdout; out != "" {
		t.Errorf("containers of the load left: %q", out)
	}
}

// tortureState is what a torture round checks lodged against: the files
// under its data root and runtime dir, the mounts in its namespace, the
// processes under its keeper and the cgroups under its session's.
type tortureState struct {
	files, mounts, procs, cgroups map[string]bool
}

// snapshot reads the state; only paths and names, not contents.
func (s *session) snapshot() tortureState {
	s.t.Helper()
	st := tortureState{files: map[string]bool{}, mounts: map[string]bool{}, procs: map[string]bool{}, cgroups: map[string]bool{}}
	for _, root := range []string{s.data, s.runDir} {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			rel, _ := filepath.Rel(root, p)
			// The daemon's own: log, pid, lock and socket files, and the
			// rootlesskit state of this start.
			base := filepath.Base(p)
			if strings.HasSuffix(base, ".log") || strings.HasSuffix(base, ".pid") || strings.HasSuffix(base, ".lock") || strings.HasSuffix(base, ".sock") || strings.HasPrefix(rel, "rootlesskit") {
				return nil
			}
			st.files[filepath.Join(filepath.Base(root), rel)] = true
			return nil
		})
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", s.pid())); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && (strings.HasPrefix(f[4], s.data) || strings.HasPrefix(f[4], s.runDir)) {
				st.mounts[f[4]] = true
			}
		}
	}
	daemon := s.pid()
	for _, p := range descendants([]int{s.pidFile("keeper.pid")}) {
		if p == daemon {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
		if err == nil {
			st.procs[strings.TrimSpace(string(comm))] = true
		}
	}
	if s.cgroup != "" {
		filepath.WalkDir(s.cgroup, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				rel, _ := filepath.Rel(s.cgroup, p)
				st.cgroups[rel] = true
			}
			return nil
		})
	}
	return st
}

// extra lists what b has that a has not.
func extra(a, b map[string]bool) []string {
	var out []string
	for k := range b {
		if !a[k] {
			out = append(out, k)
		}
	}
	return out
}

// killDaemonStage kills the API daemon (not the keeper, which holds the
// namespaces) with SIGKILL and waits until its lock is free.
func (s *session) killDaemonStage() {
	s.t.Helper()
	pid := s.pid()
	syscall.Kill(pid, syscall.SIGKILL)
	waitGone(s.t, []int{pid}, 10*time.Second)
	// The leader can be gone before its last thread has closed the lock
	// file: the next start waits for the lock, not for the socket.
	waitFor(s.t, 10*time.Second, func() bool {
		f, err := os.Open(filepath.Join(s.runDir, "lodged.lock"))
		if err != nil {
			return true
		}
		defer f.Close()
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			return false
		}
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return true
	})
}

// TestTortureKill9: LODGE_TORTURE_ROUNDS rounds (50; `make torture`) of
// load, pull, create, rm, commit, volume create and volume rm, each with
// the daemon stage killed by SIGKILL at a random moment of it. After every
// restart each listed image, container and volume answers inspect and the
// image the round made (if it was made) runs; at the end, with everything
// the rounds made removed, no file under the data root or runtime dir, no
// mount, process or cgroup is left that was not there before.
func TestTortureKill9(t *testing.T) {
	s, docker := containerSession(t)
	rounds := tortureRounds(t, 50)
	seed := time.Now().UnixNano()
	rng := newRand(seed)
	t.Logf("torture: %d rounds, seed %d", rounds, seed)
	archive := busyboxArchive(t, s.base, "loaded:1", []string{"echo", "loaded"})
	reg := startRegistry(t, "", "")
	s.must(docker, "run", "--name", "src", "busybox", "sh", "-c", "head -c 20000000 /dev/urandom > /data")
	s.must(docker, "commit", "src", reg+"/pulled:1")
	s.must(docker, "push", reg+"/pulled:1")
	s.must(docker, "rmi", reg+"/pulled:1")
	// Every kind of object once, so the store's directories exist in the
	// baseline.
	s.must(docker, "volume", "create", "prime")
	s.must(docker, "volume", "rm", "prime")
	s.must(docker, "create", "--name", "prime", "busybox", "true")
	s.must(docker, "rm", "prime")
	// A --rm container (each round runs one) lives in the store's volatile
	// index, whose files stay once written.
	s.must(docker, "run", "--rm", "busybox", "true")
	type op struct {
		name  string
		prep  []string // run first, failures ignored
		args  []string
		image string // the image the op makes, run after it
	}
	ops := func(i int) []op {
		n := strconv.Itoa(i)
		return []op{
			{name: "load", prep: []string{"rmi", "-f", "loaded:1"}, args: []string{"load", "-i", archive}, image: "loaded:1"},
			{name: "pull", prep: []string{"rmi", "-f", reg + "/pulled:1"}, args: []string{"pull", reg + "/pulled:1"}, image: reg + "/pulled:1"},
			{name: "create", args: []string{"create", "--name", "c" + n, "-v", "data" + n + ":/data", "busybox", "true"}},
			{name: "rm", prep: []string{"create", "--name", "r" + n, "busybox", "true"}, args: []string{"rm", "r" + n}},
			{name: "commit", args: []string{"commit", "src", "committed:" + n}, image: "committed:" + n},
			{name: "volume create", args: []string{"volume", "create", "v" + n}},
			{name: "volume rm", prep: []string{"volume", "create", "w" + n}, args: []string{"volume", "rm", "w" + n}},
		}
	}
	// How long each op takes here, uninterrupted: the kill comes at a
	// random moment within that.
	took := map[string]time.Duration{}
	for _, o := range ops(1000) {
		if o.prep != nil {
			s.run(docker, o.prep...)
		}
		t0 := time.Now()
		s.must(docker, o.args...)
		took[o.name] = time.Since(t0)
	}
	t.Logf("torture: the ops take %v", took)
	s.must(docker, "rm", "-f", "c1000")
	s.must(docker, "rmi", "loaded:1", reg+"/pulled:1", "committed:1000")
	s.must(docker, "volume", "rm", "data1000", "v1000")
	base := s.snapshot()
	t.Logf("torture: baseline: %d files, %d mounts, %d processes, %d cgroups", len(base.files), len(base.mounts), len(base.procs), len(base.cgroups))

	corrupt, interrupted := 0, 0
	for i := 0; i < rounds; i++ {
		all := ops(i)
		o := all[i%len(all)]
		if o.prep != nil {
			s.run(docker, o.prep...)
		}
		cmd := s.command(context.Background(), docker, o.args...)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int63n(int64(took[o.name]))))
		s.killDaemonStage()
		if cmd.Wait() != nil {
			interrupted++
		}
		s.start()
		// Every object listed answers; the image of the round runs.
		bad := s.checkListed(docker)
		if o.image != "" && s.run(docker, "image", "inspect", o.image).code == 0 {
			if r := s.run(docker, "run", "--rm", o.image, "true"); r.code != 0 {
				bad = append(bad, fmt.Sprintf("image %s after a killed %s does not run: %s", o.image, o.name, r))
			}
		}
		for _, b := range bad {
			t.Errorf("round %d (%s killed): %s", i, o.name, b)
		}
		if len(bad) > 0 {
			corrupt++
		}
	}
	// Remove what the rounds made; what is left is a leak.
	if ids := strings.Fields(s.must(docker, "ps", "-aq").stdout); len(ids) > 0 {
		s.must(docker, append([]string{"rm", "-f"}, ids...)...)
	}
	for _, img := range strings.Fields(s.must(docker, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout) {
		if img != "busybox:latest" {
			s.must(docker, "rmi", "-f", img)
		}
	}
	for _, id := range strings.Fields(s.must(docker, "images", "-aq", "--filter", "dangling=true").stdout) {
		s.run(docker, "rmi", "-f", id)
	}
	if vols := strings.Fields(s.must(docker, "volume", "ls", "-q").stdout); len(vols) > 0 {
		s.must(docker, append([]string{"volume", "rm"}, vols...)...)
	}
	end := s.snapshot()
	leaks := 0
	for what, pair := range map[string][2]map[string]bool{
		"file": {base.files, end.files}, "mount": {base.mounts, end.mounts},
		"process": {base.procs, end.procs}, "cgroup": {base.cgroups, end.cgroups},
	} {
		for _, x := range extra(pair[0], pair[1]) {
			leaks++
			if leaks <= 40 {
				t.Errorf("left after %d killed rounds: %s %s", rounds, what, x)
			}
		}
	}
	t.Logf("torture: %d rounds of kill -9 (%d cut their client's command short): %d with a broken object, %d leaked files, mounts, processes or cgroups", rounds, interrupted, corrupt, leaks)
	if interrupted < rounds/3 {
		t.Errorf("only %d of %d rounds killed lodged in the middle of a command: the test tests too little", interrupted, rounds)
	}
}

// checkListed inspects every image, container and volume lodged lists and
// returns what does not answer.
func (s *session) checkListed(docker string) []string {
	var bad []string
	for _, kind := range []struct{ list, inspect []string }{
		{[]string{"images", "-aq"}, []string{"image", "inspect"}},
		{[]string{"ps", "-aq"}, []string{"container", "inspect"}},
		{[]string{"volume", "ls", "-q"}, []string{"volume", "inspect"}},
	} {
		r := s.run(docker, kind.list...)
		if r.code != 0 {
			bad = append(bad, fmt.Sprintf("docker %s: %s", strings.Join(kind.list, " "), r))
			continue
		}
		ids := strings.Fields(r.stdout)
		if len(ids) == 0 {
			continue
		}
		if r := s.run(docker, append(kind.inspect, ids...)...); r.code != 0 {
			bad = append(bad, fmt.Sprintf("docker %s: %s", strings.Join(kind.inspect, " "), r))
		}
	}
	return bad
}

func newRand(seed int64) *rand.Rand { return rand.New(rand.NewSource(seed)) }

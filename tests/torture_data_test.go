package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"golang.org/x/sys/unix"
)

// The data-safety half of the torture suite (issue 16): streams a client
// abandons, many clients at once, and the daemon stage killed with -9 in
// the middle of changing the store. Each test prints its figures with
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

// dialAsUser connects to the session's socket as its user, as the user's
// own clients do: lodged serves only its owner, and the tests run as root.
// The credentials change on one locked OS thread only (a raw setresuid, not
// Go's, which changes every thread); the thread ends with its goroutine.
func (s *session) dialAsUser() (net.Conn, error) {
	if os.Getuid() != 0 || s.u.uid == 0 {
		return net.Dial("unix", s.socket())
	}
	type dialed struct {
		c   net.Conn
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with these credentials
		keep := ^uintptr(0)
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, keep, uintptr(s.u.gid), keep); e != 0 {
			ch <- dialed{err: fmt.Errorf("setresgid: %w", e)}
			return
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, keep, uintptr(s.u.uid), keep); e != 0 {
			ch <- dialed{err: fmt.Errorf("setresuid: %w", e)}
			return
		}
		c, err := net.Dial("unix", s.socket())
		ch <- dialed{c, err}
	}()
	d := <-ch
	return d.c, d.err
}

// apiClient talks HTTP to the session's lodged as its user.
func (s *session) apiClient() *http.Client {
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext:       func(context.Context, string, string) (net.Conn, error) { return s.dialAsUser() },
	}}
}

// debugFigures are what lodged's /debug/vars says about itself.
type debugFigures struct {
	Goroutines int   `json:"goroutines"`
	OpenFDs    int   `json:"open_fds"`
	RSS        int64 `json:"rss_bytes"`
	MemStats   struct {
		HeapInuse uint64
		HeapAlloc uint64
		Sys       uint64
	} `json:"memstats"`
}

func (f debugFigures) String() string {
	return fmt.Sprintf("goroutines %d, fds %d, heap in use %.1f MiB, RSS %.1f MiB",
		f.Goroutines, f.OpenFDs, float64(f.MemStats.HeapInuse)/(1<<20), float64(f.RSS)/(1<<20))
}

// figures collects lodged's garbage (through pprof's heap?gc=1) and reads
// its figures.
func (s *session) figures() debugFigures {
	s.t.Helper()
	c := s.apiClient()
	resp, err := c.Get("http://lodge/debug/pprof/heap?gc=1")
	if err != nil {
		s.t.Fatalf("debug heap: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	resp, err = c.Get("http://lodge/debug/vars")
	if err != nil {
		s.t.Fatalf("debug vars: %v", err)
	}
	defer resp.Body.Close()
	var f debugFigures
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		s.t.Fatalf("debug vars: %s %s", resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
		s.t.Fatalf("debug vars: %v", err)
	}
	return f
}

// goroutineDump is lodged's goroutines, grouped, for a failure message.
func (s *session) goroutineDump() string {
	resp, err := s.apiClient().Get("http://lodge/debug/pprof/goroutine?debug=1")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// cpuTicks is the user and system time a process has used, in clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}

// settled waits until lodged's goroutines and open fds are back to at
// most those of want (a stream's goroutines end a little after its
// request; idle registry connections after lodged's 10 s), and returns the
// last figures.
func (s *session) settled(want debugFigures, d time.Duration) (debugFigures, bool) {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		f := s.figures()
		ok := f.Goroutines <= want.Goroutines && f.OpenFDs <= want.OpenFDs
		if ok || time.Now().After(deadline) {
			return f, ok
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// assertQuiet checks that lodged, with nothing asked of it, uses almost no
// CPU: a stream's goroutine left spinning burns a core.
func (s *session) assertQuiet(what string) {
	s.t.Helper()
	pid := s.pid()
	before := cpuTicks(s.t, pid)
	time.Sleep(3 * time.Second)
	if used := cpuTicks(s.t, pid) - before; used > 100 { // 1 s of 3 at 100 Hz
		s.t.Errorf("%s: idle lodged used %d clock ticks of CPU in 3 s\n%s", what, used, s.goroutineDump())
	}
}

// brokenUploads is a registry on 127.0.0.1 that takes the first 64 KiB
// of any blob upload and then, when cut is false, stops reading until the
// request is given up (a push that hangs until its client goes away), or,
// when cut is true, reads 4 MiB as fast as it comes and drops the
// connection (a registry that fails while lodged is busy sending).
func brokenUploads(t *testing.T, cut bool) string {
	t.Helper()
	inner := registry.New(registry.Logger(nilLogger()))
	ctx, cancel := context.WithCancel(context.Background())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodPatch || r.Method == http.MethodPut) && strings.Contains(r.URL.Path, "/blobs/uploads/") && r.ContentLength != 0 {
			n, _ := io.CopyN(io.Discard, r.Body, 64<<10)
			if n == 64<<10 && !cut {
				select {
				case <-r.Context().Done():
				case <-ctx.Done():
				}
				return
			}
			if n == 64<<10 {
				io.CopyN(io.Discard, r.Body, 4<<20)
				if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
					c.(*net.TCPConn).SetLinger(0)
					c.Close()
				}
				return
			}
		}
		inner.ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { cancel(); srv.Close() })
	return l.Addr().String()
}

// abandon starts a client command and kills it once it has run for d (or
// once ready says so): the client went away in the middle of its stream.
func (s *session) abandon(d time.Duration, name string, args ...string) {
	s.t.Helper()
	cmd := s.command(context.Background(), name, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true // the shell's pipeline goes with it
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	time.Sleep(d)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
}

// TestTortureAbandonedStreams: commit, push, save, export, diff and the
// local registry view's blobs, each abandoned by its client in the middle,
// leave lodged with no goroutine more than before, no file descriptor
// more, no CPU burning and its store unlocked.
func TestTortureAbandonedStreams(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "run", "--name", "maker", "busybox", "sh", "-c", "head -c 60000000 /dev/urandom > /big; head -c 60000000 /dev/urandom > /big2")
	s.must(docker, "commit", "maker", "big:1")
	reg, cutter := brokenUploads(t, false), brokenUploads(t, true)
	s.must(docker, "tag", "big:1", reg+"/big:1")
	s.must(docker, "tag", "big:1", cutter+"/big:1")
	layer := strings.TrimSpace(s.must(docker, "image", "inspect", "-f", "{{index .RootFS.Layers 1}}", "big:1").stdout)

	// The baseline: the API's own goroutines with nothing running.
	s.must(docker, "images")
	time.Sleep(time.Second)
	base := s.figures()
	t.Logf("torture: baseline: %s", base)

	client := s.apiClient()
	cases := []struct {
		name string
		run  func()
	}{
		{"commit", func() { s.abandon(300*time.Millisecond, docker, "commit", "maker", "half:1") }},
		{"push", func() { s.abandon(4*time.Second, docker, "push", reg+"/big:1") }},
		// The registry drops the connection while lodged sends at full
		// speed: the upload's reader is closed while its gzip goroutine
		// reads the diff, five times over.
		{"push cut by the registry", func() {
			for i := 0; i < 5; i++ {
				if r := s.run(docker, "push", cutter+"/big:1"); r.code == 0 {
					t.Errorf("push to a registry that drops uploads succeeded: %s", r)
				}
			}
		}},
		{"save", func() {
			s.abandon(1500*time.Millisecond, "sh", "-c", docker+" save big:1 | head -c 100000 >/dev/null; sleep 60")
		}},
		{"save to nobody", func() { s.abandon(1500*time.Millisecond, "sh", "-c", docker+" save big:1 | sleep 60") }},
		{"export", func() {
			s.abandon(1500*time.Millisecond, "sh", "-c", docker+" export maker | head -c 100000 >/dev/null; sleep 60")
		}},
		{"diff", func() { s.abandon(100*time.Millisecond, docker, "diff", "maker") }},
		// BuildKit asks HEAD for every blob of the local registry view,
		// and drops GETs it no longer needs; five of each, so that a
		// close racing the diff's own goroutine is seen.
		{"registry blob HEAD", func() {
			for i := 0; i < 5; i++ {
				resp, err := client.Head("http://lodge/lodge/registry/localhost/big/blobs/" + layer)
				if err != nil {
					t.Fatalf("HEAD blob: %v", err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("HEAD blob: %s", resp.Status)
				}
			}
		}},
		{"registry blob GET", func() {
			for i := 0; i < 5; i++ {
				resp, err := client.Get("http://lodge/lodge/registry/localhost/big/blobs/" + layer)
				if err != nil {
					t.Fatalf("GET blob: %v", err)
				}
				io.CopyN(io.Discard, resp.Body, int64(i)<<18)
				resp.Body.Close()
			}
		}},
	}
	for _, c := range cases {
		c.run()
		// Goroutines of the abandoned request and its stream end; one
		// of net/http's may come and go.
		want := base
		want.Goroutines++
		f, ok := s.settled(want, 40*time.Second)
		t.Logf("torture: after an abandoned %s: %s", c.name, f)
		if !ok {
			t.Errorf("abandoned %s: %d goroutines and %d open fds, %d and %d before\n%s", c.name, f.Goroutines, f.OpenFDs, base.Goroutines, base.OpenFDs, s.goroutineDump())
		}
		s.assertQuiet("after an abandoned " + c.name)
		done := make(chan result, 1)
		go func() { done <- s.run(docker, "tag", "busybox", "busybox:after") }()
		select {
		case r := <-done:
			if r.code != 0 {
				t.Errorf("docker tag after an abandoned %s: %s", c.name, r)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("after an abandoned %s the store stays locked:\n%s", c.name, s.goroutineDump())
		}
	}
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

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// saveHeapProfile keeps lodged's heap profile in LODGE_TORTURE_PROFILE_DIR,
// when set, for `go tool pprof -diff_base`.
func (s *session) saveHeapProfile(name string) {
	dir := os.Getenv("LODGE_TORTURE_PROFILE_DIR")
	if dir == "" {
		return
	}
	resp, err := s.apiClient().Get("http://lodge/debug/pprof/heap")
	if err != nil {
		s.t.Errorf("heap profile: %v", err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		s.t.Errorf("heap profile: %v", err)
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

// TestTortureHugeBodies: a 100 MB JSON body, with its length announced or
// chunked, is refused with a 400 that says why, without lodged's memory
// growing by anything like it; a build context and a load of that size are
// read as the streams they are (refused for what they hold, not their
// size), and lodged answers others meanwhile.
func TestTortureHugeBodies(t *testing.T) {
	s, docker := containerSession(t)
	base := s.figures()
	client := s.apiClient()
	huge := func() io.Reader {
		// {"Image":"busybox","Env":["x=xxxx...  (100 MB, never closed)
		return io.MultiReader(strings.NewReader(`{"Image":"busybox","Env":["x=`), io.LimitReader(repeatByte('x'), 100<<20), strings.NewReader(`"]}`))
	}
	var peak int64
	for _, chunked := range []bool{false, true} {
		body := huge()
		if chunked {
			body = io.MultiReader(body) // no length: chunked
		}
		req, _ := http.NewRequest(http.MethodPost, "http://lodge/v1.51/containers/create", body)
		req.Header.Set("Content-Type", "application/json")
		if !chunked {
			req.ContentLength = 100<<20 + int64(len(`{"Image":"busybox","Env":["x=`)+len(`"]}`))
		}
		done := make(chan struct{})
		go func() {
			// RSS while the request is read.
			for {
				select {
				case <-done:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid())); err == nil {
					for _, l := range strings.Split(string(b), "\n") {
						if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
							kb, _ := strconv.ParseInt(f[1], 10, 64)
							if kb<<10 > peak {
								peak = kb << 10
							}
						}
					}
				}
			}
		}()
		resp, err := client.Do(req)
		close(done)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "larger than") && !strings.Contains(string(b), "too large") {
				t.Errorf("100 MB JSON body (chunked %v): %s %s", chunked, resp.Status, b)
			}
		}
		// A client still writing may see its connection closed instead:
		// lodged stops reading what it refused.
	}
	t.Logf("torture: 100 MB JSON bodies: RSS %.1f MiB before, %.1f MiB at most while refusing them", float64(base.RSS)/(1<<20), float64(peak)/(1<<20))
	// The chunked body is read up to the 16 MiB limit, and a JSON
	// decoder's buffer doubles as it grows: up to about three times that
	// while it is refused, not the 100 MB (747 MiB with no limit).
	if peak > base.RSS+64<<20 {
		t.Errorf("lodged's RSS rose from %.1f to %.1f MiB reading a body it refuses", float64(base.RSS)/(1<<20), float64(peak)/(1<<20))
	}
	if r := s.must(docker, "ps", "-a", "--format", "{{.Names}}"); r.stdout != "" {
		t.Errorf("containers after refused creates: %q", r.stdout)
	}
}

// repeatByte reads b forever.
type repeatByte byte

func (r repeatByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

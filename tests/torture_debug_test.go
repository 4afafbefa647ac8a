package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// What the torture suite reads of lodged: its debug figures on the
// socket (/debug/vars, /debug/pprof), its CPU time, and waiting for them
// to settle.

// dialAsUser connects to the session's socket as its user, as the user's
// own clients do: lodged serves only its owner, and the tests run as root.
// The credentials change on one locked OS thread only (a raw setresuid, not
// Go's, which changes every thread); the thread ends with its goroutine.
func (s *session) dialAsUser() (net.Conn, error) { return s.dialUnixAsUser(s.socket()) }

// dialUnixAsUser is dialAsUser for another of the user's sockets (the
// CRI's).
func (s *session) dialUnixAsUser(path string) (net.Conn, error) {
	if os.Getuid() != 0 || s.u.uid == 0 {
		return net.Dial("unix", path)
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
		c, err := net.Dial("unix", path)
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

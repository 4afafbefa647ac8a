package tests

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Torture of lodged's streams and bodies (issue 16): streams a client
// abandons, and request bodies far over the limit.

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
	addr := serveLoopback(t, h)
	t.Cleanup(cancel) // before the server's close: stalled handlers end
	return addr
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

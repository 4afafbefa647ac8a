package tests

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// stallingRegistry is an in-memory registry on 127.0.0.1 that, while
// stalling is set, sends the first MiB of any blob larger than that and
// then holds the connection open, reporting on stalled each time.
type stallingRegistry struct {
	addr    string
	mu      sync.Mutex
	stall   bool
	stalled chan struct{}
}

func startStallingRegistry(t *testing.T) *stallingRegistry {
	t.Helper()
	r := &stallingRegistry{stall: true, stalled: make(chan struct{}, 16)}
	inner := registry.New(registry.Logger(nilLogger()))
	ctx, cancel := context.WithCancel(context.Background())
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		stall := r.stall
		r.mu.Unlock()
		if !stall || req.Method != http.MethodGet || !strings.Contains(req.URL.Path, "/blobs/sha256:") {
			inner.ServeHTTP(w, req)
			return
		}
		rec := &capture{header: http.Header{}}
		inner.ServeHTTP(rec, req)
		if rec.status != 0 && rec.status != http.StatusOK || len(rec.body) <= 1<<20 {
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			if rec.status != 0 {
				w.WriteHeader(rec.status)
			}
			w.Write(rec.body)
			return
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(http.StatusOK)
		w.Write(rec.body[:1<<20])
		w.(http.Flusher).Flush()
		r.stalled <- struct{}{}
		select {
		case <-req.Context().Done():
		case <-ctx.Done():
		}
	})
	r.addr = serveLoopback(t, h)
	t.Cleanup(cancel) // before the server's close: stalled handlers end
	return r
}

func (r *stallingRegistry) setStall(on bool) {
	r.mu.Lock()
	r.stall = on
	r.mu.Unlock()
}

// capture is a ResponseWriter that keeps what the registry would send.
type capture struct {
	header http.Header
	status int
	body   []byte
}

func (c *capture) Header() http.Header         { return c.header }
func (c *capture) WriteHeader(code int)        { c.status = code }
func (c *capture) Write(b []byte) (int, error) { c.body = append(c.body, b...); return len(b), nil }

// A kill -9 of lodged in the middle of a pull leaves no half image behind,
// the user's other images intact, and the next pull of the same image
// succeeds.
func TestPullKilledMidway(t *testing.T) {
	s, docker := containerSession(t)
	reg := startStallingRegistry(t)
	img, err := random.Image(4<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.addr + "/team/big:1"
	reg.setStall(false)
	nref, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(nref, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	reg.setStall(true)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pull := s.command(ctx, docker, "pull", ref)
	pull.Stdout, pull.Stderr = io.Discard, io.Discard
	if err := pull.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reg.stalled:
	case <-time.After(60 * time.Second):
		t.Fatal("the pull never reached a layer download")
	}
	pid := s.pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, []int{pid}, 10*time.Second)
	if pull.Wait() == nil {
		t.Error("docker pull succeeded although its daemon was killed")
	}

	reg.setStall(false)
	s.start()
	if imgs := s.must(docker, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout; strings.Contains(imgs, "team/big") {
		t.Errorf("a half-pulled image is listed after the kill: %q", imgs)
	}
	if r := s.run(docker, "image", "inspect", ref); r.code == 0 {
		t.Errorf("a half-pulled image can be inspected: %s", r)
	}
	s.must(docker, "pull", ref)
	if got := s.must(docker, "image", "inspect", "-f", "{{index .RepoDigests 0}}", ref).stdout; !strings.Contains(got, want.String()) {
		t.Errorf("repo digest after the second pull: %q, want %s", got, want)
	}
	if out := s.must(docker, "run", "--rm", "busybox", "echo", "intact").stdout; out != "intact\n" {
		t.Errorf("busybox after the killed pull: %q", out)
	}
}

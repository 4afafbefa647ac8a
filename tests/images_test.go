package tests

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// startRegistry serves an in-memory registry on 127.0.0.1 and returns its
// host:port. With user set, every request needs that basic-auth user.
func startRegistry(t *testing.T, user, pass string) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(nilLogger()))
	if user != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="lodge-test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	return serveLoopback(t, h)
}

// serveLoopback serves h on a free port of 127.0.0.1 until the test ends
// and returns its host:port.
func serveLoopback(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

func TestImagesRoundTrip(t *testing.T) {
	s, docker := containerSession(t)
	reg := startRegistry(t, "", "")

	imgs := s.must(docker, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout
	if !strings.Contains(imgs, "busybox:latest") {
		t.Fatalf("docker images after load: %q", imgs)
	}
	s.must(docker, "image", "inspect", "busybox")
	if h := s.must(docker, "history", "busybox").stdout; !strings.Contains(h, "busybox-static") {
		t.Errorf("history: %q", h)
	}

	ref := reg + "/team/app:1.1"
	s.must(docker, "tag", "busybox", ref)
	push := s.must(docker, "push", ref)
	if !strings.Contains(push.stdout, "digest: sha256:") {
		t.Errorf("push output: %q", push.stdout)
	}
	digest := push.stdout[strings.Index(push.stdout, "digest: ")+8:]
	digest = strings.Fields(digest)[0]
	s.must(docker, "rmi", ref)
	pull := s.must(docker, "pull", ref)
	if !strings.Contains(pull.stdout, "Digest: "+digest) {
		t.Errorf("pull digest differs from push (%s): %q", digest, pull.stdout)
	}
	rd := s.must(docker, "image", "inspect", "-f", "{{range .RepoDigests}}{{.}} {{end}}", ref).stdout
	if !strings.Contains(rd, digest) {
		t.Errorf("RepoDigests %q lack %s", rd, digest)
	}
	if r := s.must(docker, "run", "--rm", ref, "echo", "pulled"); r.stdout != "pulled\n" {
		t.Errorf("run pulled image: %q", r.stdout)
	}

	// save two images into one archive, remove them, load them back.
	other := busyboxArchive(t, s.base, "other:2", []string{"echo", "other"})
	s.must(docker, "load", "-i", other)
	tarPath := filepath.Join(s.base, "two.tar")
	s.must(docker, "save", "-o", tarPath, "busybox:latest", "other:2")
	s.must(docker, "rmi", "busybox:latest", "other:2", ref)
	if imgs := s.must(docker, "images", "-q").stdout; strings.TrimSpace(imgs) != "" {
		t.Fatalf("images left after rmi: %q", imgs)
	}
	load := s.must(docker, "load", "-i", tarPath).stdout
	if !strings.Contains(load, "busybox:latest") || !strings.Contains(load, "other:2") {
		t.Errorf("load of a saved pair: %q", load)
	}
	if r := s.must(docker, "run", "--rm", "other:2"); r.stdout != "other\n" {
		t.Errorf("run loaded image: %q", r.stdout)
	}

	// import a rootfs tar as a new image.
	rootfs := filepath.Join(s.base, "rootfs.tar")
	if err := os.WriteFile(rootfs, layerTar(t), 0o644); err != nil {
		t.Fatal(err)
	}
	s.must(docker, "import", "-c", `CMD ["/bin/echo","imported"]`, rootfs, "mybase:1")
	if r := s.must(docker, "run", "--rm", "mybase:1"); r.stdout != "imported\n" {
		t.Errorf("run imported image: %q", r.stdout)
	}

	// an image used by a container cannot be removed without force.
	s.must(docker, "create", "--name", "user-of-other", "other:2")
	if r := s.run(docker, "rmi", "other:2"); r.code == 0 || !strings.Contains(r.stderr, "conflict") {
		t.Errorf("rmi of an image in use: %s", r)
	}
	s.must(docker, "rm", "user-of-other")
	s.must(docker, "image", "prune", "-a", "-f")
	if imgs := s.must(docker, "images", "-q").stdout; strings.TrimSpace(imgs) != "" {
		t.Errorf("images left after prune -a: %q", imgs)
	}
}

func TestRegistryLogin(t *testing.T) {
	s, docker := containerSession(t)
	reg := startRegistry(t, "alice", "s3cret")
	if r := s.run(docker, "login", "-u", "alice", "-p", "wrong", reg); r.code == 0 {
		t.Errorf("login with a wrong password succeeded: %s", r)
	}
	s.must(docker, "login", "-u", "alice", "-p", "s3cret", reg)
	cfg, _ := os.ReadFile(filepath.Join(s.home, ".docker", "config.json"))
	if !strings.Contains(string(cfg), reg) {
		t.Errorf("credentials not stored: %s", cfg)
	}
	ref := reg + "/private/bb:1"
	s.must(docker, "tag", "busybox", ref)
	s.must(docker, "push", ref)
	s.must(docker, "rmi", ref)
	s.must(docker, "pull", ref)
	s.must(docker, "logout", reg)
	s.must(docker, "rmi", ref)
	if r := s.run(docker, "pull", ref); r.code == 0 {
		t.Errorf("pull without credentials succeeded: %s", r)
	}

	// lodge login stores what docker login does, and lodged uses it.
	cmd := s.command(context.Background(), "lodge", "login", "-u", "alice", "--password-stdin", reg)
	cmd.Stdin = strings.NewReader("wrong\n")
	if err := cmd.Run(); err == nil {
		t.Errorf("lodge login with a wrong password succeeded")
	}
	cmd = s.command(context.Background(), "lodge", "login", "-u", "alice", "--password-stdin", reg)
	cmd.Stdin = strings.NewReader("s3cret\n")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Login Succeeded") {
		t.Fatalf("lodge login: %v: %s", err, out)
	}
	s.must("lodge", "pull", ref)
	if r := s.must(docker, "run", "--rm", ref, "echo", "private"); r.stdout != "private\n" {
		t.Errorf("run of the image lodge pulled with stored credentials: %q", r.stdout)
	}
	s.must("lodge", "logout", reg)
	if cfg, _ := os.ReadFile(filepath.Join(s.home, ".docker", "config.json")); strings.Contains(string(cfg), reg) {
		t.Errorf("lodge logout left the credentials: %s", cfg)
	}
	s.must("lodge", "rmi", ref)
	if r := s.run("lodge", "pull", ref); r.code == 0 {
		t.Errorf("lodge pull after logout succeeded: %s", r)
	}
}

// TestImportFromURL: docker import of a URL has lodged download the
// rootfs; a URL that
// answers 404 is refused with its status, and no image is made.
func TestImportFromURL(t *testing.T) {
	s, docker := containerSession(t)
	rootfs := layerTar(t)
	var gets atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/rootfs.tar", func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		w.Write(rootfs)
	})
	base := serveLoopback(t, mux)

	out := s.must(docker, "import", "-c", `CMD ["/bin/echo","from-url"]`, "http://"+base+"/rootfs.tar", "urlimp:1").stdout
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[len(lines)-1], "sha256:") || gets.Load() != 1 {
		t.Errorf("docker import of a URL (%d downloads): %q", gets.Load(), out)
	}
	if r := s.must(docker, "run", "--rm", "urlimp:1"); r.stdout != "from-url\n" {
		t.Errorf("run of the image imported from a URL: %q", r.stdout)
	}
	if r := s.run(docker, "import", "http://"+base+"/missing.tar", "urlimp:3"); r.code == 0 || !strings.Contains(r.stderr+r.stdout, "404") {
		t.Errorf("docker import of a URL that answers 404: %s", r)
	}
	if r := s.run(docker, "image", "inspect", "urlimp:3"); r.code == 0 {
		t.Errorf("a failed import made an image: %s", r)
	}
}

// TestPullAllTags: docker pull --all-tags pulls every tag the registry
// lists for the repository, each reported as Docker does, and ends with
// one status line for the repository; a plain pull of the same name is
// still latest alone.
func TestPullAllTags(t *testing.T) {
	s, docker := containerSession(t)
	reg := startRegistry(t, "", "")
	repo := reg + "/team/multi"
	other := busyboxArchive(t, s.base, "other:2", []string{"echo", "other"})
	s.must(docker, "load", "-i", other)
	s.must(docker, "tag", "busybox", repo+":one")
	s.must(docker, "tag", "other:2", repo+":two")
	s.must(docker, "push", repo+":one")
	s.must(docker, "push", repo+":two")
	s.must(docker, "rmi", repo+":one", repo+":two")

	if r := s.run(docker, "pull", repo); r.code == 0 || !strings.Contains(r.stderr, "latest") {
		t.Errorf("a plain pull of a repository without latest: %s", r)
	}
	out := s.must(docker, "pull", "--all-tags", repo).stdout
	for _, want := range []string{"one: Pulling from team/multi", "two: Pulling from team/multi", "Status: Downloaded newer image for " + repo + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker pull --all-tags lacks %q:\n%s", want, out)
		}
	}
	tags := s.must(docker, "images", "--format", "{{.Tag}}", repo).stdout
	if tags != "one\ntwo\n" && tags != "two\none\n" {
		t.Errorf("tags after pull --all-tags: %q", tags)
	}
	if r := s.must(docker, "run", "--rm", repo+":two"); r.stdout != "other\n" {
		t.Errorf("run of a tag pulled with --all-tags: %q", r.stdout)
	}
	if out := s.must(docker, "pull", "-a", repo).stdout; !strings.Contains(out, "Status: Image is up to date for "+repo+"\n") {
		t.Errorf("docker pull -a again:\n%s", out)
	}
}

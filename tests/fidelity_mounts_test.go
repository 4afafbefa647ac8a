package tests

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReadOnlyBindRecursive: a read-only bind is read-only with its
// submounts from API 1.44, as in Docker 25 and later; bind-recursive=
// writable and clients of older APIs get the old top-only read-only.
func TestReadOnlyBindRecursive(t *testing.T) {
	docker := needDocker(t)
	if os.Getuid() != 0 {
		t.Skip("needs root to make a submount under a bind's source")
	}
	s := newSession(t, lookupUser(t, "LODGE_TEST_USER"))
	dir := filepath.Join(s.base, "robind")
	sub := filepath.Join(dir, "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(dir, s.u.uid, s.u.gid)
	// The submount is there before lodged starts, so its namespace has it.
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "mode=0777,size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	s.start()
	s.loadBusybox(docker)

	old := func(c *exec.Cmd) { c.Env = append(c.Env, "DOCKER_API_VERSION=1.43") }
	for _, tc := range []struct {
		name  string
		mod   func(*exec.Cmd)
		args  []string
		subRW bool // the submount is writable
	}{
		{name: "-v ro", args: []string{"-v", dir + ":/b:ro"}},
		{name: "runc -v ro", args: []string{"--runtime", "runc", "-v", dir + ":/b:ro"}},
		{name: "--mount readonly", args: []string{"--mount", "type=bind,src=" + dir + ",dst=/b,readonly"}},
		{name: "bind-recursive=readonly", args: []string{"--mount", "type=bind,src=" + dir + ",dst=/b,readonly,bind-recursive=readonly,bind-propagation=rprivate"}},
		{name: "bind-recursive=writable", args: []string{"--mount", "type=bind,src=" + dir + ",dst=/b,readonly,bind-recursive=writable"}, subRW: true},
		{name: "API 1.43 -v ro", mod: old, args: []string{"-v", dir + ":/b:ro"}, subRW: true},
		{name: "API 1.43 --mount readonly", mod: old, args: []string{"--mount", "type=bind,src=" + dir + ",dst=/b,readonly"}, subRW: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"run", "--rm"}, tc.args...), "busybox", "sh", "-c",
				"touch /b/top 2>/dev/null && echo top-rw || echo top-ro; touch /b/sub/x 2>/dev/null && echo sub-rw || echo sub-ro; rm -f /b/sub/x")
			r := s.runWith(tc.mod, docker, args...)
			want := "top-ro\nsub-ro\n"
			if tc.subRW {
				want = "top-ro\nsub-rw\n"
			}
			if r.code != 0 || r.stdout != want {
				t.Errorf("want %q: %s", want, r)
			}
		})
	}
}

// TestVolumeFidelity: volume-subpath, a --tmpfs over an image's VOLUME,
// prune at API 1.41 and a driver no plugin provides behave as in Docker.
func TestVolumeFidelity(t *testing.T) {
	s, docker := containerSession(t)

	// A driver no plugin provides is 404 with Docker's message.
	if r := s.run(docker, "volume", "create", "-d", "nfs-plugin", "x"); r.code == 0 || !strings.Contains(r.stderr, `error looking up volume plugin nfs-plugin: plugin "nfs-plugin" not found`) {
		t.Errorf("volume create with another driver: %s", r)
	}

	// --mount volume-subpath mounts a directory of the volume.
	s.must(docker, "volume", "create", "sv")
	s.must(docker, "run", "--rm", "-v", "sv:/v", "busybox", "sh", "-c", "mkdir -p /v/sub/in && echo deep > /v/sub/f && ln -s / /v/esc && ln -s sub/in /v/link")
	if r := s.must(docker, "run", "--rm", "--mount", "type=volume,src=sv,dst=/m,volume-subpath=sub", "busybox", "cat", "/m/f"); r.stdout != "deep\n" {
		t.Errorf("volume-subpath: %s", r)
	}
	if r := s.must(docker, "run", "--rm", "--mount", "type=volume,src=sv,dst=/m,volume-subpath=link", "busybox", "sh", "-c", "touch /m/x && ls /m"); r.stdout != "x\n" {
		t.Errorf("volume-subpath through a symlink inside the volume: %s", r)
	}
	for sub, want := range map[string]string{"nope": "cannot access path", "esc": "escapes the base directory", "../x": "subpath must be a relative path within the volume"} {
		if r := s.run(docker, "run", "--rm", "--mount", "type=volume,src=sv,dst=/m,volume-subpath="+sub, "busybox", "ls", "/m"); r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("volume-subpath=%s: want %q: %s", sub, want, r)
		}
	}

	// A --tmpfs where the image has a VOLUME replaces the anonymous volume.
	s.must(docker, "create", "--name", "base", "busybox")
	s.must(docker, "commit", "--change", "VOLUME /data", "base", "withvol")
	if r := s.must(docker, "run", "--rm", "--tmpfs", "/data", "withvol", "sh", "-c", "grep ' /data ' /proc/mounts | cut -d' ' -f3"); r.stdout != "tmpfs\n" {
		t.Errorf("--tmpfs over a VOLUME: %s", r)
	}
	if r := s.must(docker, "volume", "ls", "-q"); r.stdout != "sv\n" {
		t.Errorf("a --tmpfs over a VOLUME left volumes: %q", r.stdout)
	}
	if r := s.run(docker, "run", "--rm", "-v", "sv:/data", "--tmpfs", "/data", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "Duplicate mount point: /data") {
		t.Errorf("a volume and a --tmpfs at one path: %s", r)
	}

	// Prune before API 1.42 removes named volumes too, as Docker did then.
	s.must(docker, "volume", "create", "named")
	if r := s.must(docker, "volume", "prune", "-f"); strings.Contains(r.stdout, "named") {
		t.Errorf("prune removed a named volume: %s", r)
	}
	r := s.runWith(func(c *exec.Cmd) { c.Env = append(c.Env, "DOCKER_API_VERSION=1.41") }, docker, "volume", "prune", "-f")
	if r.code != 0 || !strings.Contains(r.stdout, "named") || !strings.Contains(r.stdout, "sv") {
		t.Errorf("prune at API 1.41: %s", r)
	}
	if r := s.must(docker, "volume", "ls", "-q"); r.stdout != "" {
		t.Errorf("after prune at API 1.41: %q", r.stdout)
	}
}

// TestContainerPruneReclaims: container prune counts what the removed
// containers wrote as reclaimed space, as Docker does.
func TestContainerPruneReclaims(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "run", "--name", "big", "busybox", "dd", "if=/dev/zero", "of=/big", "bs=1M", "count=3")
	r := s.must(docker, "container", "prune", "-f")
	if !strings.Contains(r.stdout, "Total reclaimed space: 3.1") || !strings.Contains(r.stdout, "MB") {
		t.Errorf("container prune of a container that wrote 3 MiB: %s", r)
	}
}

// TestCpErrors: docker cp's errors name the path and the container as the
// user gave them, a volume's path included, and a tar is not unpacked
// into a file.
func TestCpErrors(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "run", "-d", "--name", "cpbox", "busybox", "sleep", "1000")
	s.must(docker, "create", "--name", "cpvol", "-v", "cv:/data", "busybox")
	dst := filepath.Join(s.home, "out")
	for ctr, p := range map[string]string{"cpbox": "/nonexistent", "cpvol": "/data/nope"} {
		r := s.run(docker, "cp", ctr+":"+p, dst)
		if want := "Could not find the file " + p + " in container " + ctr; r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("docker cp %s:%s: want %q: %s", ctr, p, want, r)
		}
	}
	// PUT /containers/{id}/archive into a file: 400, as in Docker.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	tw.Write([]byte("hi"))
	tw.Close()
	tarPath := filepath.Join(s.base, "in.tar")
	if err := os.WriteFile(tarPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	r := s.must("curl", "-s", "-w", "\n%{http_code}", "--unix-socket", s.socket(), "-X", "PUT", "-H", "Content-Type: application/x-tar",
		"--data-binary", "@"+tarPath, "http://lodge/v1.51/containers/cpbox/archive?path=/etc/passwd")
	if !strings.HasSuffix(r.stdout, "\n400") || !strings.Contains(r.stdout, "extraction point is not a directory") {
		t.Errorf("extracting into a file: %s", r)
	}
	if r := s.must(docker, "exec", "cpbox", "head", "-c", "5", "/etc/passwd"); r.stdout != "root:" {
		t.Errorf("/etc/passwd after the refused extraction: %s", r)
	}
	s.must(docker, "rm", "-f", "cpbox") // containers outlive lodged
}

// TestBindDataRoot: a bind of lodge's data root (or in it, or above it)
// gets rslave propagation, as Docker gives binds of its root, and a
// private one is refused with Docker's message.
func TestBindDataRoot(t *testing.T) {
	s, docker := containerSession(t)
	root := filepath.Join(s.data, "lodge")
	vols := filepath.Join(root, "volumes")
	for src, want := range map[string]string{root: "rslave", vols: "rslave", s.data: "rslave", s.home: "rprivate"} {
		name := "dr" + strings.ReplaceAll(filepath.Base(src), ".", "")
		s.must(docker, "create", "--name", name, "-v", src+":/d", "busybox", "ls", "/d")
		if r := s.must(docker, "inspect", "-f", "{{(index .Mounts 0).Propagation}}", name); strings.TrimSpace(r.stdout) != want {
			t.Errorf("bind of %s: propagation %q, want %q", src, r.stdout, want)
		}
		if r := s.run(docker, "start", "-a", name); r.code != 0 {
			t.Errorf("bind of %s: %s", src, r)
		}
	}
	r := s.run(docker, "create", "-v", vols+":/d:rprivate", "busybox")
	if want := `must use either propagation mode "rslave" or "rshared" when mount source is within the daemon root`; r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("a private bind of the data root: %s", r)
	}
}

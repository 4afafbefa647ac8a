package tests

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// withFiles is the busybox rootfs tar with extra entries appended.
func withFiles(t *testing.T, extra []*tar.Header, bodies []string) []byte {
	t.Helper()
	base := layerTar(t)
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	tr := tar.NewReader(bytes.NewReader(base))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(h)
		io.Copy(tw, tr)
	}
	for i, h := range extra {
		h.Size = int64(len(bodies[i]))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(bodies[i]))
	}
	tw.Close()
	return out.Bytes()
}

// importImage makes an image from a rootfs tar through `docker import`.
func (s *session) importImage(docker, ref string, layer []byte, changes ...string) {
	s.t.Helper()
	path := filepath.Join(s.base, strings.NewReplacer(":", "_", "/", "_").Replace(ref)+".tar")
	if err := os.WriteFile(path, layer, 0o644); err != nil {
		s.t.Fatal(err)
	}
	args := []string{"import"}
	for _, c := range changes {
		args = append(args, "--change", c)
	}
	s.must(docker, append(args, path, ref)...)
}

func ownerOf(t *testing.T, path string) (int, int) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

func TestNamedVolumes(t *testing.T) {
	s, docker := containerSession(t)

	s.must(docker, "volume", "create", "--label", "team=a", "data")
	if ls := s.must(docker, "volume", "ls", "--format", "{{.Driver}} {{.Name}}").stdout; ls != "local data\n" {
		t.Errorf("volume ls: %q", ls)
	}
	mp := strings.TrimSpace(s.must(docker, "volume", "inspect", "--format", "{{.Mountpoint}} {{.Labels.team}}", "data").stdout)
	if !strings.HasPrefix(mp, s.data+"/") || !strings.HasSuffix(mp, "/_data a") {
		t.Errorf("volume inspect: %q (data root %s)", mp, s.data)
	}
	mp = strings.TrimSuffix(mp, " a")

	s.must(docker, "run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo 1 > /data/x")
	if r := s.must(docker, "run", "--rm", "-v", "data:/data:ro", "busybox", "cat", "/data/x"); r.stdout != "1\n" {
		t.Errorf("read back through :ro: %q", r.stdout)
	}
	if r := s.run(docker, "run", "--rm", "-v", "data:/data:ro,z", "busybox", "sh", "-c", "echo 2 > /data/x"); r.code == 0 || !strings.Contains(r.stderr, "Read-only") {
		t.Errorf("write to a :ro volume: %s", r)
	}
	// On the host the file is the user's: root in the container is the user.
	if b, err := os.ReadFile(filepath.Join(mp, "x")); err != nil || string(b) != "1\n" {
		t.Errorf("the volume's file on the host: %q %v", b, err)
	}
	if uid, _ := ownerOf(t, filepath.Join(mp, "x")); uid != s.u.uid {
		t.Errorf("the volume's file is owned by %d, not the user %d", uid, s.u.uid)
	}

	// In use, by a running or a stopped container, it cannot go.
	s.must(docker, "run", "-d", "--name", "user", "-v", "data:/data", "busybox", "sleep", "1000")
	if r := s.run(docker, "volume", "rm", "data"); r.code == 0 || !strings.Contains(r.stderr, "in use") {
		t.Errorf("volume rm of a volume in use: %s", r)
	}
	s.must(docker, "stop", "-t", "0", "user")
	if r := s.run(docker, "volume", "rm", "data"); r.code == 0 || !strings.Contains(r.stderr, "in use") {
		t.Errorf("volume rm of a volume a stopped container uses: %s", r)
	}
	// It outlives the container, and lodged; a stopped container still
	// holds it after the restart.
	s.must(docker, "rm", "-v", "user")
	s.must(docker, "create", "--name", "keeper", "-v", "data:/data", "busybox", "true")
	s.must("lodge", "daemon", "stop")
	s.start()
	if r := s.run(docker, "volume", "rm", "data"); r.code == 0 || !strings.Contains(r.stderr, "in use") {
		t.Errorf("volume rm after a restart, a container using it: %s", r)
	}
	if r := s.must(docker, "ps", "-a", "--filter", "volume=data", "--format", "{{.Names}}"); r.stdout != "keeper\n" {
		t.Errorf("ps --filter volume=data: %q", r.stdout)
	}
	if r := s.must(docker, "ps", "-a", "--filter", "volume=other", "--format", "{{.Names}}"); r.stdout != "" {
		t.Errorf("ps --filter volume=other: %q", r.stdout)
	}
	s.must(docker, "rm", "keeper")
	if r := s.must(docker, "run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/x"); r.stdout != "1\n" {
		t.Errorf("after a lodged restart: %q", r.stdout)
	}
	if r := s.must("lodge", "volume", "ls", "-q"); r.stdout != "data\n" {
		t.Errorf("lodge volume ls -q: %q", r.stdout)
	}

	// Filters.
	s.must(docker, "volume", "create", "other")
	if r := s.must(docker, "volume", "ls", "-q", "--filter", "label=team=a"); r.stdout != "data\n" {
		t.Errorf("ls --filter label: %q", r.stdout)
	}
	if r := s.must(docker, "volume", "ls", "-q", "--filter", "name=oth"); r.stdout != "other\n" {
		t.Errorf("ls --filter name: %q", r.stdout)
	}
	s.must(docker, "create", "--name", "holder", "-v", "other:/o", "busybox", "true")
	if r := s.must(docker, "volume", "ls", "-q", "--filter", "dangling=true"); r.stdout != "data\n" {
		t.Errorf("ls --filter dangling=true: %q", r.stdout)
	}
	s.must(docker, "rm", "holder")

	// Prune takes anonymous volumes only, unless --all.
	s.must(docker, "create", "--name", "anon", "-v", "/data", "busybox", "true")
	s.must(docker, "rm", "anon")
	if n := len(strings.Fields(s.must(docker, "volume", "ls", "-q").stdout)); n != 3 {
		t.Errorf("an anonymous volume outlives rm without -v: %d volumes", n)
	}
	s.must(docker, "volume", "prune", "-f")
	if r := s.must(docker, "volume", "ls", "-q"); r.stdout != "data\nother\n" {
		t.Errorf("after prune: %q", r.stdout)
	}
	s.must(docker, "volume", "prune", "-af")
	if r := s.must(docker, "volume", "ls", "-q"); r.stdout != "" {
		t.Errorf("after prune --all: %q", r.stdout)
	}
	if _, err := os.Stat(mp); !os.IsNotExist(err) {
		t.Errorf("the pruned volume's data is still on disk: %v", err)
	}
	if r := s.run(docker, "volume", "inspect", "data"); r.code == 0 || !strings.Contains(r.stderr, "no such volume") {
		t.Errorf("inspect of a removed volume: %s", r)
	}
	if r := s.run(docker, "volume", "create", "-d", "nfs-plugin", "x"); r.code == 0 || !strings.Contains(r.stderr, `plugin "nfs-plugin" not found`) {
		t.Errorf("another driver: %s", r)
	}
}

func TestAnonymousVolumesAndCopyUp(t *testing.T) {
	s, docker := containerSession(t)
	layer := withFiles(t, []*tar.Header{
		{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1000, Gid: 1000},
		{Name: "data/file", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 1000, Gid: 1000},
		{Name: "data/sub/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "data/sub/link", Typeflag: tar.TypeSymlink, Linkname: "../file"},
	}, []string{"", "from the image\n", "", ""})
	s.importImage(docker, "withvol:1", layer, `VOLUME /data`, `CMD ["sh"]`, `ENV PATH=/bin`)

	// An image's VOLUME gets an anonymous volume holding the image's files.
	s.must(docker, "run", "-d", "--name", "cc", "withvol:1", "sleep", "1000")
	r := s.must(docker, "exec", "cc", "sh", "-c", "stat -c '%u:%g %a' /data /data/file; cat /data/sub/link")
	if r.stdout != "1000:1000 750\n1000:1000 640\nfrom the image\n" {
		t.Errorf("copy-up into the anonymous volume: %q", r.stdout)
	}
	name := strings.TrimSpace(s.must(docker, "inspect", "--format", "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}", "cc").stdout)
	f := strings.Fields(name)
	if len(f) != 3 || f[0] != "volume" || len(f[1]) != 64 || f[2] != "/data" {
		t.Fatalf("inspect .Mounts: %q\n%s", name, s.run(docker, "inspect", "cc").stdout)
	}
	if r := s.must(docker, "volume", "ls", "-q"); strings.TrimSpace(r.stdout) != f[1] {
		t.Errorf("volume ls: %q", r.stdout)
	}
	s.must(docker, "rm", "-f", "-v", "cc")
	if r := s.must(docker, "volume", "ls", "-q"); r.stdout != "" {
		t.Errorf("rm -v left volumes: %q", r.stdout)
	}

	// A new named volume is filled too; volume-nocopy leaves it empty; a
	// volume that has files is not filled again.
	r = s.must(docker, "run", "--rm", "-v", "named:/data", "withvol:1", "cat", "/data/file")
	if r.stdout != "from the image\n" {
		t.Errorf("copy-up into a named volume: %q", r.stdout)
	}
	r = s.must(docker, "run", "--rm", "--mount", "type=volume,src=empty,dst=/data,volume-nocopy", "withvol:1", "ls", "-A", "/data")
	if r.stdout != "" {
		t.Errorf("volume-nocopy: %q", r.stdout)
	}
	s.must(docker, "run", "--rm", "-v", "mine:/data", "busybox", "sh", "-c", "echo own > /data/own")
	r = s.must(docker, "run", "--rm", "-v", "mine:/data", "withvol:1", "ls", "/data")
	if r.stdout != "own\n" {
		t.Errorf("a volume with files got the image's too: %q", r.stdout)
	}
	// --volumes-from shares another container's volumes.
	s.must(docker, "run", "-d", "--name", "src", "-v", "/shared", "busybox", "sh", "-c", "echo s > /shared/f; sleep 1000")
	waitFor(t, 10e9, func() bool { return s.run(docker, "exec", "src", "test", "-f", "/shared/f").code == 0 })
	if r := s.must(docker, "run", "--rm", "--volumes-from", "src:ro", "busybox", "sh", "-c", "cat /shared/f; touch /shared/g 2>&1; true"); !strings.HasPrefix(r.stdout, "s\n") || !strings.Contains(r.stdout, "Read-only") {
		t.Errorf("--volumes-from src:ro: %q", r.stdout)
	}
	s.must(docker, "rm", "-f", "-v", "src")
	// -v /path is anonymous; --rm takes it away with the container.
	s.must(docker, "run", "--rm", "-v", "/scratch", "busybox", "sh", "-c", "echo x > /scratch/y")
	if r := s.must(docker, "volume", "ls", "-q"); r.stdout != "empty\nmine\nnamed\n" {
		t.Errorf("--rm left an anonymous volume: %q", r.stdout)
	}
}

func TestMountSyntaxes(t *testing.T) {
	s, docker := containerSession(t)
	dir := filepath.Join(s.base, "work")
	os.MkdirAll(dir, 0o755)
	os.Chown(dir, s.u.uid, s.u.gid)
	os.WriteFile(filepath.Join(dir, "in"), []byte("host\n"), 0o644)

	r := s.must(docker, "run", "--rm",
		"--mount", "type=volume,src=data,dst=/d",
		"--mount", "type=bind,src="+dir+",dst=/w,readonly",
		"--mount", "type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770",
		"busybox", "sh", "-c", "df -k /t | tail -1; stat -c %a /t; cat /w/in; touch /w/no 2>&1; echo ok > /d/f; cat /d/f")
	lines := strings.Split(r.stdout, "\n")
	if len(lines) < 5 || !strings.Contains(lines[0], " 65536 ") || lines[1] != "1770" || lines[2] != "host" || !strings.Contains(lines[3], "Read-only") || lines[4] != "ok" {
		t.Errorf("--mount volume, bind readonly, tmpfs: %q", r.stdout)
	}

	// Nested destinations: the inner mount lands on the outer one.
	inner := filepath.Join(s.base, "inner")
	os.MkdirAll(inner, 0o755)
	os.WriteFile(filepath.Join(inner, "deep"), []byte("deep\n"), 0o644)
	r = s.must(docker, "run", "--rm", "-v", inner+":/w/a/b:z", "-v", dir+":/w:Z", "busybox", "sh", "-c", "cat /w/in /w/a/b/deep")
	if r.stdout != "host\ndeep\n" {
		t.Errorf("nested binds: %q", r.stdout)
	}

	// Files a container writes in a bind are the user's, or the user's
	// subordinate ids for other users in the container.
	s.must(docker, "run", "--rm", "-v", dir+":/w", "busybox", "sh", "-c", "touch /w/by-root; mkdir /w/d; chown 1000:1000 /w/d")
	if uid, _ := ownerOf(t, filepath.Join(dir, "by-root")); uid != s.u.uid {
		t.Errorf("a file root made in a bind is owned by %d, not %d", uid, s.u.uid)
	}
	if uid, _ := ownerOf(t, filepath.Join(dir, "d")); uid == s.u.uid || uid == 0 || uid == 1000 {
		t.Errorf("a file uid 1000 owns in the container is %d on the host, not a subordinate id", uid)
	}

	// Driver options: a tmpfs volume and a bind volume.
	s.must(docker, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "tv")
	r = s.must(docker, "run", "--rm", "-v", "tv:/tv", "busybox", "sh", "-c", "df -k /tv | tail -1")
	if !strings.Contains(r.stdout, " 1024 ") {
		t.Errorf("tmpfs volume of 1m: %q", r.stdout)
	}
	s.must(docker, "volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device="+dir, "bv")
	s.must(docker, "run", "--rm", "-v", "bv:/b", "busybox", "touch", "/b/through-volume")
	if _, err := os.Stat(filepath.Join(dir, "through-volume")); err != nil {
		t.Errorf("bind volume: %v", err)
	}
	if r := s.run(docker, "volume", "create", "-o", "type=nfs", "-o", "device=:/x", "nv"); r.code == 0 || !strings.Contains(r.stderr, "nfs") {
		t.Errorf("an nfs volume: %s", r)
	}

	// Bad specs are clear errors, and nothing is left behind.
	for _, bad := range [][]string{
		{"-v", "data:relative"},
		{"-v", "data:/"},
		{"-v", "data:/x:bogus"},
		{"-v", "bad!name:/x"},
		{"-v", dir + ":/x:nocopy"},
		{"--mount", "type=bind,src=" + filepath.Join(s.base, "missing") + ",dst=/x"},
		{"-v", "a:/same", "-v", "b:/same"},
	} {
		r := s.run(docker, append(append([]string{"run", "--rm"}, bad...), "busybox", "true")...)
		if r.code != 125 || !strings.Contains(r.stderr, "invalid") && !strings.Contains(r.stderr, "Duplicate") && !strings.Contains(r.stderr, "not exist") {
			t.Errorf("docker run %v: %s", bad, r)
		}
	}
	if r := s.must(docker, "volume", "ls", "-q"); r.stdout != "bv\ndata\ntv\n" {
		t.Errorf("refused runs left volumes: %q", r.stdout)
	}

	// A bind source the user cannot read is a clear error.
	locked := filepath.Join(s.base, "locked")
	os.MkdirAll(locked, 0o700) // root's, since the test runs as root
	if os.Getuid() == 0 {
		r = s.run(docker, "run", "--rm", "-v", locked+":/l", "busybox", "true")
		if r.code != 125 || !strings.Contains(r.stderr, "not readable") {
			t.Errorf("unreadable bind source: %s", r)
		}
	}
}

// With a single-id map (no subordinate ids) volumes still work: the
// image's other owners cannot be kept, and are the user's.
func TestVolumesSingleID(t *testing.T) {
	docker := needDocker(t)
	s := newSession(t, lookupUser(t, "LODGE_TEST_NOSUB_USER"))
	s.start()
	s.loadBusybox(docker)
	layer := withFiles(t, []*tar.Header{
		{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 1000, Gid: 1000},
		{Name: "data/file", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 1000, Gid: 1000},
	}, []string{"", "single\n"})
	s.importImage(docker, "withvol:1", layer, `VOLUME /data`, `ENV PATH=/bin`)
	if r := s.must(docker, "run", "--rm", "-v", "v1:/data", "withvol:1", "cat", "/data/file"); r.stdout != "single\n" {
		t.Errorf("copy-up under a single-id map: %q", r.stdout)
	}
	s.must(docker, "run", "-d", "--name", "cc", "-v", "v1:/data", "busybox", "sleep", "1000")
	in := filepath.Join(s.home, "f")
	s.userFile(in, "x")
	s.must(docker, "cp", in, "cc:/data/")
	s.must(docker, "cp", "-a", in, "cc:/data/kept")
	if r := s.must(docker, "exec", "cc", "cat", "/data/f", "/data/kept"); r.stdout != "xx" {
		t.Errorf("docker cp under a single-id map: %q", r.stdout)
	}
	s.must(docker, "rm", "-f", "cc")
	s.must(docker, "volume", "rm", "v1")
}

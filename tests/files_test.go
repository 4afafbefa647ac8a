package tests

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// userFile writes a file the session's user owns.
func (s *session) userFile(path, content string) {
	s.t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
	os.Chown(path, s.u.uid, s.u.gid)
}

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		out = append(out, h.Name)
	}
	sort.Strings(out)
	return out
}

func TestCopyInAndOut(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "run", "-d", "--name", "cc", "busybox", "sleep", "1000")
	in := filepath.Join(s.home, "file")
	s.userFile(in, "hello\n")

	// In, to a running container: the user's file is root's inside.
	s.must(docker, "cp", in, "cc:/tmp/")
	if r := s.must(docker, "exec", "cc", "sh", "-c", "cat /tmp/file; stat -c '%u %a' /tmp/file"); r.stdout != "hello\n0 644\n" {
		t.Errorf("docker cp in: %q", r.stdout)
	}
	// Out: the whole root passes over the kernel's files.
	all := s.must(docker, "cp", "cc:/", "-")
	if names := strings.Join(tarNames(t, []byte(all.stdout)), " "); !strings.Contains(names, "bin/busybox") || strings.Contains(names, "proc/1/") || strings.Contains(names, "sys/kernel") {
		t.Errorf("docker cp cc:/ -: %.300s", names)
	}
	s.must(docker, "cp", "cc:/etc/hostname", ".")
	host, _ := os.ReadFile(filepath.Join(s.home, "hostname"))
	if want := s.must(docker, "exec", "cc", "hostname").stdout; string(host) != want {
		t.Errorf("docker cp out: %q, want %q", host, want)
	}
	// A tar on stdin.
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, f := range []struct{ name, body string }{{"a.txt", "A"}, {"dir/b.txt", "B"}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o600, Size: int64(len(f.body)), Uid: 1000, Gid: 1000})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	cmd := s.command(t.Context(), docker, "cp", "-", "cc:/tmp")
	cmd.Stdin = bytes.NewReader(tb.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker cp - : %v %s", err, out)
	}
	if r := s.must(docker, "exec", "cc", "sh", "-c", "cat /tmp/a.txt /tmp/dir/b.txt; stat -c %u:%g /tmp/dir/b.txt"); r.stdout != "AB0:0\n" {
		t.Errorf("docker cp -: %q", r.stdout)
	}
	// -a keeps the tar's owners.
	cmd = s.command(t.Context(), docker, "cp", "-a", "-", "cc:/opt")
	cmd.Stdin = bytes.NewReader(tb.Bytes())
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("docker cp into a missing directory: %s", out)
	}
	s.must(docker, "exec", "cc", "mkdir", "/opt")
	cmd = s.command(t.Context(), docker, "cp", "-a", "-", "cc:/opt")
	cmd.Stdin = bytes.NewReader(tb.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker cp -a - : %v %s", err, out)
	}
	if r := s.must(docker, "exec", "cc", "stat", "-c", "%u:%g %a", "/opt/dir/b.txt"); r.stdout != "1000:1000 600\n" {
		t.Errorf("docker cp -a - (owners from the tar): %q", r.stdout)
	}

	// A stopped container, both ways.
	s.must(docker, "stop", "-t", "0", "cc")
	s.userFile(in, "while stopped\n")
	s.must(docker, "cp", in, "cc:/tmp/file2")
	os.Remove(filepath.Join(s.home, "a.txt"))
	s.must(docker, "cp", "cc:/tmp/a.txt", ".")
	if b, _ := os.ReadFile(filepath.Join(s.home, "a.txt")); string(b) != "A" {
		t.Errorf("docker cp out of a stopped container: %q", b)
	}
	s.must(docker, "start", "cc")
	if r := s.must(docker, "exec", "cc", "cat", "/tmp/file2"); r.stdout != "while stopped\n" {
		t.Errorf("docker cp into a stopped container: %q", r.stdout)
	}

	// docker diff, export, commit.
	diff := s.must(docker, "diff", "cc").stdout
	for _, want := range []string{"C /tmp\n", "A /tmp/file\n", "A /tmp/dir/b.txt\n"} {
		if !strings.Contains(diff, want) {
			t.Errorf("docker diff lacks %q:\n%s", want, diff)
		}
	}
	if strings.Contains(diff, "/etc") || strings.Contains(diff, "/proc") || strings.Contains(diff, "/dev") {
		t.Errorf("docker diff shows the runtime's own paths:\n%s", diff)
	}
	exp := filepath.Join(s.home, "c.tar")
	s.must(docker, "export", "-o", exp, "cc")
	b, err := os.ReadFile(exp)
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Join(tarNames(t, b), " ")
	if !strings.Contains(names, "bin/busybox") || !strings.Contains(names, "tmp/file2") {
		t.Errorf("docker export: %s", names)
	}
	s.must(docker, "commit", "-m", "note", "-a", "me", "-c", "ENV X=1", "-c", `CMD ["sh", "-c", "echo $X"]`, "cc", "snap:1")
	// commit froze cc while it read its layer, and thawed it after.
	if r := s.run("timeout", "20", docker, "exec", "cc", "echo", "thawed"); r.stdout != "thawed\n" {
		t.Errorf("the container after commit: %s", r)
	}
	if r := s.must(docker, "run", "--rm", "snap:1"); r.stdout != "1\n" {
		t.Errorf("the committed CMD and ENV: %q", r.stdout)
	}
	if r := s.must(docker, "run", "--rm", "snap:1", "ls", "/tmp"); r.stdout != "a.txt\ndir\nfile\nfile2\n" {
		t.Errorf("the committed files: %q", r.stdout)
	}
	if r := s.must(docker, "image", "inspect", "--format", "{{.Comment}} {{.Author}}", "snap:1"); r.stdout != "note me\n" {
		t.Errorf("the committed image's comment and author: %q", r.stdout)
	}
	if r := s.must(docker, "run", "--rm", "snap:1", "cat", "/etc/hosts"); !strings.Contains(r.stdout, "localhost") {
		t.Errorf("the committed image's /etc/hosts: %q", r.stdout)
	}
	s.must(docker, "rm", "-f", "cc")
}

// docker cp into a container never writes outside it, whatever its
// symlinks say; a tar with ../ entries is refused.
func TestCopyStaysInContainer(t *testing.T) {
	s, docker := containerSession(t)
	hostDir := filepath.Join(s.base, "hostdir")
	os.MkdirAll(hostDir, 0o777)
	os.Chmod(hostDir, 0o777)
	// The container has a directory at the same path as hostDir, which the
	// test user can write on the host: a copy resolved on the host side
	// would land there, one resolved in the container lands in its own.
	s.must(docker, "run", "-d", "--name", "cc", "busybox", "sh", "-c",
		"ln -s / /tmp/rootlink; ln -s "+hostDir+" /tmp/hostlink; ln -s ../../../../../.. /tmp/dots; mkdir -p /inside "+hostDir+"; sleep 1000")
	waitFor(t, 10e9, func() bool { return s.run(docker, "exec", "cc", "test", "-d", hostDir).code == 0 })
	in := filepath.Join(s.home, "payload")
	s.userFile(in, "payload\n")
	hostEmpty := func(how string) {
		t.Helper()
		ents, err := os.ReadDir(hostDir)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 0 {
			t.Errorf("%s: docker cp wrote into the host directory: %v", how, ents)
		}
	}

	s.must(docker, "cp", in, "cc:/tmp/rootlink/inside/")
	s.must(docker, "cp", in, "cc:/tmp/dots/inside/p2")
	s.must(docker, "cp", in, "cc:/tmp/rootlink"+hostDir+"/p3")
	s.must(docker, "cp", in, "cc:/tmp/hostlink/p4")
	if r := s.must(docker, "exec", "cc", "sh", "-c", "cat /inside/payload /inside/p2 "+hostDir+"/p3 "+hostDir+"/p4"); r.stdout != "payload\npayload\npayload\npayload\n" {
		t.Errorf("copies through links, read in the container: %q", r.stdout)
	}
	hostEmpty("through links to / and to a host path")
	// Out of the container, the same links lead to the container's files.
	out := filepath.Join(s.home, "out")
	os.MkdirAll(out, 0o755)
	os.Chown(out, s.u.uid, s.u.gid)
	s.must(docker, "cp", "cc:/tmp/rootlink/etc/hostname", out)
	if b, _ := os.ReadFile(filepath.Join(out, "hostname")); len(b) != 13 {
		t.Errorf("cp out through a link to /: %q", b)
	}

	// A tar with ../ entries.
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "../../../../../../.." + hostDir + "/dotdot", Mode: 0o644, Size: 1})
	tw.Write([]byte("x"))
	tw.Close()
	cmd := s.command(t.Context(), docker, "cp", "-", "cc:/tmp")
	cmd.Stdin = bytes.NewReader(tb.Bytes())
	outb, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(outb), "refused") {
		t.Errorf("a ../ tar: %v %s", err, outb)
	}
	hostEmpty("a ../ tar entry")
	if r := s.run(docker, "cp", in, "cc:/no/such/dir/"); r.code == 0 {
		t.Errorf("cp to a missing directory: %s", r)
	}
	s.must(docker, "rm", "-f", "cc")
}

// The same through lodge's own verbs, and docker system df.
func TestLodgeFileVerbs(t *testing.T) {
	s, docker := containerSession(t)
	s.must("lodge", "run", "-d", "--name", "w1", "-v", "vol1:/v", "busybox", "sleep", "1000")
	in := filepath.Join(s.home, "note")
	s.userFile(in, "lodge\n")
	s.must("lodge", "cp", in, "w1:/tmp/")
	s.must("lodge", "cp", in, "w1:/v/renamed")
	if r := s.must(docker, "exec", "w1", "cat", "/tmp/note", "/v/renamed"); r.stdout != "lodge\nlodge\n" {
		t.Errorf("lodge cp in: %q", r.stdout)
	}
	s.must("lodge", "cp", "w1:/tmp/note", filepath.Join(s.home, "back"))
	if b, _ := os.ReadFile(filepath.Join(s.home, "back")); string(b) != "lodge\n" {
		t.Errorf("lodge cp out: %q", b)
	}
	if uid, _ := ownerOf(t, filepath.Join(s.home, "back")); uid != s.u.uid {
		t.Errorf("lodge cp out made a file of uid %d", uid)
	}
	if r := s.must("lodge", "diff", "w1"); !strings.Contains(r.stdout, "A /tmp/note\n") || strings.Contains(r.stdout, "/v/") {
		t.Errorf("lodge diff: %q", r.stdout)
	}
	exp := filepath.Join(s.home, "w1.tar")
	s.must("lodge", "export", "-o", exp, "w1")
	b, err := os.ReadFile(exp)
	if err != nil {
		t.Fatal(err)
	}
	if names := strings.Join(tarNames(t, b), " "); !strings.Contains(names, "tmp/note") || strings.Contains(names, "v/renamed") {
		t.Errorf("lodge export: %s", names)
	}
	s.must("lodge", "commit", "-m", "by lodge", "-c", `CMD ["cat", "/tmp/note"]`, "w1", "snap:2")
	if r := s.must(docker, "run", "--rm", "snap:2"); r.stdout != "lodge\n" {
		t.Errorf("lodge commit: %q", r.stdout)
	}
	for _, cli := range []string{docker, "lodge"} {
		r := s.must(cli, "system", "df")
		if !strings.Contains(r.stdout, "Images") || !strings.Contains(r.stdout, "Local Volumes") {
			t.Errorf("%s system df: %s", cli, r)
		}
	}
	if r := s.must(docker, "system", "df", "-v"); !strings.Contains(r.stdout, "vol1") || !strings.Contains(r.stdout, "w1") {
		t.Errorf("docker system df -v: %s", r.stdout)
	}
	// Docker's image list leaves the containers using an image and the
	// size it shares uncounted (-1, "N/A"); shared-size=1 and df count
	// them. snap:2 was committed from busybox: busybox's only layer is
	// shared, all of it.
	if r := s.must(docker, "image", "ls", "--format", "{{.Containers}} {{.SharedSize}}", "busybox"); r.stdout != "N/A N/A\n" {
		t.Errorf("docker image ls: containers and shared size %q, want N/A N/A", r.stdout)
	}
	_, body := s.apiCall(t, "GET", "/v1.51/images/json?shared-size=1", "", "")
	var sums []struct {
		RepoTags                     []string
		Size, SharedSize, Containers int64
	}
	if err := json.Unmarshal([]byte(body), &sums); err != nil {
		t.Fatalf("images/json?shared-size=1: %v: %s", err, body)
	}
	for _, sum := range sums {
		if slices.Contains(sum.RepoTags, "busybox:latest") && (sum.SharedSize != sum.Size || sum.Containers != -1) {
			t.Errorf("busybox with shared-size=1: size %d, shared %d, containers %d", sum.Size, sum.SharedSize, sum.Containers)
		}
	}
	for _, l := range strings.Split(s.must(docker, "system", "df", "-v").stdout, "\n") {
		if strings.HasPrefix(l, "busybox ") && strings.Contains(l, "N/A") {
			t.Errorf("docker system df -v leaves busybox's shared size uncounted: %q", l)
		}
	}
	s.must("lodge", "volume", "create", "--label", "k=v", "v2")
	if r := s.must("lodge", "volume", "inspect", "-f", "{{.Name}} {{.Labels.k}}", "v2"); r.stdout != "v2 v\n" {
		t.Errorf("lodge volume inspect: %q", r.stdout)
	}
	if r := s.run("lodge", "volume", "rm", "vol1"); r.code == 0 {
		t.Errorf("lodge volume rm of a volume in use: %s", r)
	}
	// Under keep-id too, what docker cp puts in is the container's root's.
	s.must("lodge", "run", "-d", "--name", "kid", "--userns", "keep-id", "-v", "vol1:/v", "busybox", "sleep", "1000")
	s.must("lodge", "cp", in, "kid:/tmp/")
	if r := s.must(docker, "exec", "-u", "0", "kid", "stat", "-c", "%u", "/tmp/note"); r.stdout != "0\n" {
		t.Errorf("lodge cp into a keep-id container: owner %q", r.stdout)
	}
	if r := s.must(docker, "exec", "kid", "cat", "/v/renamed"); r.stdout != "lodge\n" {
		t.Errorf("a volume in a keep-id container: %q", r.stdout)
	}
	s.must("lodge", "rm", "-f", "kid")
	// A read-only root takes files in its volumes only.
	s.must(docker, "run", "-d", "--name", "ro", "--read-only", "-v", "vol1:/v", "busybox", "sleep", "1000")
	if r := s.run(docker, "cp", in, "ro:/tmp/"); r.code == 0 || !strings.Contains(r.stderr, "read-only") {
		t.Errorf("docker cp into a read-only root: %s", r)
	}
	s.must(docker, "cp", in, "ro:/v/into-volume")
	// Stopped, its volume is still reached by its path in the container,
	// both ways; its read-only root is not written.
	s.must(docker, "stop", "-t", "0", "ro")
	s.must(docker, "cp", in, "ro:/v/while-stopped")
	if r := s.run(docker, "cp", in, "ro:/tmp/"); r.code == 0 {
		t.Errorf("docker cp into a stopped read-only root: %s", r)
	}
	out := filepath.Join(s.home, "vout")
	os.MkdirAll(out, 0o755)
	os.Chown(out, s.u.uid, s.u.gid)
	s.must(docker, "cp", "ro:/v", out)
	for _, f := range []string{"renamed", "into-volume", "while-stopped"} {
		if b, err := os.ReadFile(filepath.Join(out, "v", f)); err != nil || string(b) != "lodge\n" {
			t.Errorf("docker cp of a stopped container's volume: %s: %q %v", f, b, err)
		}
	}
	s.must("lodge", "rm", "-f", "w1", "ro")
	s.must("lodge", "volume", "rm", "v2")
	s.must("lodge", "volume", "prune", "-af")
	if r := s.must("lodge", "volume", "ls", "-q"); r.stdout != "" {
		t.Errorf("after lodge volume prune -af: %q", r.stdout)
	}
}

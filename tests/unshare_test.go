package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLodgeUnshare: lodge unshare runs a command as root in lodged's user
// namespace, with lodged's id map; a directory chowned there to a
// container's uid is that uid's in a container; the command's exit code
// is lodge's; and with --rootless-netns a container answers on its own
// address (the host's network has no route there; the test sends nothing
// to it from the host, which would leave the machine).
func TestLodgeUnshare(t *testing.T) {
	s, docker := containerSession(t)
	if r := s.must("lodge", "unshare", "id", "-u"); strings.TrimSpace(r.stdout) != "0" {
		t.Errorf("id -u in lodge unshare: %q, want 0", r.stdout)
	}
	want, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", s.pidFile("lodged.pid")))
	if err != nil {
		t.Fatal(err)
	}
	if r := s.must("lodge", "unshare", "cat", "/proc/self/uid_map"); r.stdout != string(want) {
		t.Errorf("uid map in lodge unshare:\n%s\nlodged's:\n%s", r.stdout, want)
	}
	if r := s.run("lodge", "unshare", "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("lodge unshare sh -c 'exit 7': %s", r)
	}

	dir := filepath.Join(s.home, "for-uid-1000")
	s.must("mkdir", dir)
	s.must("lodge", "unshare", "chown", "1000:1000", dir)
	if r := s.must(docker, "run", "--rm", "-v", dir+":/v", "busybox", "stat", "-c", "%u:%g", "/v"); strings.TrimSpace(r.stdout) != "1000:1000" {
		t.Errorf("owner in the container of a directory chowned to 1000:1000 in lodge unshare: %q", r.stdout)
	}
	// And on the host, the subordinate id the map gives 1000.
	if st, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	} else if uid := int(st.Sys().(*syscall.Stat_t).Uid); uid == s.u.uid {
		t.Errorf("%s is still the user's own after the chown", dir)
	}

	busybox, err := exec.LookPath("busybox")
	if err != nil {
		skipOrFail(t, "busybox-static is not installed")
	}
	s.must(docker, "run", "-d", "--name", "web", "busybox", "sh", "-c", "echo hello-unshare > /tmp/index.html; exec httpd -f -p 8080 -h /tmp")
	url := "http://" + s.ipOf(docker, "web", "bridge") + ":8080/"
	var r result
	waitForOr(t, 20*time.Second, func() bool {
		// No -T: busybox-static 1.35's wget crashes with it.
		r = s.run("lodge", "unshare", "--rootless-netns", busybox, "wget", "-q", "-O", "-", url)
		return r.code == 0
	}, "the container's address to answer in lodge unshare --rootless-netns")
	if strings.TrimSpace(r.stdout) != "hello-unshare" {
		t.Errorf("GET %s in lodge unshare --rootless-netns: %s", url, r)
	}
	s.must(docker, "rm", "-f", "web")
}

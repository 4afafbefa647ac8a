package tests

import (
	"os"
	"os/exec"
	"path/filepath"
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

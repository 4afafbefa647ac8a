package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// delegatedCgroup is the cgroup v2 subtree hack/setup-root.sh delegates to
// a user, as systemd delegates user@.service: "" when there is none.
func delegatedCgroup(u testUser) string {
	for _, v2 := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(v2, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
			continue
		}
		dir := filepath.Join(v2, "lodge-test.slice", u.name)
		var fs unix.Stat_t
		if unix.Stat(dir, &fs) == nil && int(fs.Uid) == u.uid {
			return dir
		}
	}
	return ""
}

// useCgroup gives the session a cgroup of its own under the user's
// delegated subtree, made and chowned the way systemd delegates one; the
// daemon starts in it. It skips (fails in CI) where there is no delegated
// subtree: run hack/setup-root.sh as root.
func (s *session) useCgroup() {
	s.t.Helper()
	if os.Getuid() != 0 {
		skipOrFail(s.t, "placing lodged in a delegated cgroup needs the tests to run as root")
	}
	deleg := delegatedCgroup(s.u)
	if deleg == "" {
		skipOrFail(s.t, "no cgroup v2 subtree delegated to %s: run hack/setup-root.sh", s.u.name)
	}
	dir := filepath.Join(deleg, filepath.Base(s.base))
	if err := os.Mkdir(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "cgroup.procs"), filepath.Join(dir, "cgroup.subtree_control"), filepath.Join(dir, "cgroup.threads")} {
		if err := os.Chown(p, s.u.uid, s.u.gid); err != nil {
			s.t.Fatal(err)
		}
	}
	s.cgroup = dir
}

// inCgroup starts a command in the session's cgroup (clone3's
// CLONE_INTO_CGROUP): nil without one.
func (s *session) inCgroup() func(*exec.Cmd) {
	if s.cgroup == "" {
		return nil
	}
	return func(cmd *exec.Cmd) {
		f, err := os.Open(s.cgroup)
		if err != nil {
			s.t.Fatal(err)
		}
		s.t.Cleanup(func() { f.Close() })
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(f.Fd())
	}
}

// removeCgroup removes the session's cgroup and what lodged made in it,
// deepest first, once their processes are gone.
func (s *session) removeCgroup() {
	if s.cgroup == "" {
		return
	}
	if err := removeCgroupTree(s.cgroup, time.Now().Add(15*time.Second)); err != nil {
		s.t.Errorf("the session's cgroup is left behind: %v", err)
	}
}

func removeCgroupTree(dir string, deadline time.Time) error {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			if err := removeCgroupTree(filepath.Join(dir, e.Name()), deadline); err != nil {
				return err
			}
		}
	}
	for {
		err := os.Remove(dir)
		if err == nil || os.IsNotExist(err) {
			return nil
		}
		if time.Now().After(deadline) {
			procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			return &os.PathError{Op: "rmdir (processes: " + string(procs) + ")", Path: dir, Err: err}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// requireCgroupSession is a started session whose lodged runs in a
// delegated cgroup.
func requireCgroupSession(t *testing.T, lodgedArgs ...string) *session {
	t.Helper()
	s := newSession(t, lookupUser(t, "LODGE_TEST_USER"))
	if s.cgroup == "" {
		s.useCgroup() // fails in CI, skips here, saying why
	}
	s.start(lodgedArgs...)
	return s
}

package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lodge-containers/lodge/proc"
)

// statusLines are the named lines of a /proc/self/status dump.
func statusLines(out string, keys ...string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		for _, want := range keys {
			if k == want {
				m[k] = strings.TrimSpace(v)
			}
		}
	}
	return m
}

// execParent finds the host process running `sleep <tag>` and returns
// the name of its parent.
func execParent(t *testing.T, tag string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			b, err := os.ReadFile(filepath.Join(d, "cmdline"))
			if err != nil || string(b) != "sleep\x00"+tag+"\x00" {
				continue
			}
			pid, err := strconv.Atoi(filepath.Base(d))
			if err != nil {
				continue
			}
			st, err := proc.ReadStat(pid)
			if err != nil {
				continue
			}
			comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(st.PPID), "comm"))
			if err == nil {
				return strings.TrimSpace(string(comm))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no process runs sleep %s", tag)
	return ""
}

// TestExecThroughLodgeExec: a docker exec runs through lodge-exec (C, no Go
// program start) with all the security the container's own process has:
// capabilities, no_new_privs, the same seccomp filter (which denies what
// the profile denies), and the exec's user, groups, cwd, tty and exit code.
func TestExecThroughLodgeExec(t *testing.T) {
	docker := needDocker(t)
	s := newSession(t, lookupUser(t, "LODGE_TEST_USER"))
	s.start("--debug") // the log says why an exec fell back
	s.loadBusybox(docker)
	t.Cleanup(func() { // before the session's cleanup removes the log
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(s.runDir, "lodged.log"))
			lines := strings.Split(string(log), "\n")
			t.Logf("lodged.log, last lines:\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	secKeys := []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters"}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"default", nil},
		{"caps", []string{"--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--cap-drop", "NET_RAW", "--cap-drop", "CHOWN"}},
		{"nnp", []string{"--security-opt", "no-new-privileges"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := "cx-" + c.name
			s.must(docker, append(append([]string{"run", "-d", "--name", name}, c.args...), "busybox", "sleep", "1000")...)
			defer s.run(docker, "rm", "-f", name)
			own := statusLines(s.must(docker, append(append([]string{"run", "--rm"}, c.args...), "busybox", "cat", "/proc/self/status")...).stdout, secKeys...)
			ex := statusLines(s.must(docker, "exec", name, "cat", "/proc/self/status").stdout, secKeys...)
			if len(own) != len(secKeys) {
				t.Fatalf("the container's status lacks lines: %v", own)
			}
			for _, k := range secKeys {
				if ex[k] != own[k] {
					t.Errorf("exec's %s is %q, the container's own process has %q", k, ex[k], own[k])
				}
			}
			if own["Seccomp"] != "2" {
				t.Errorf("the container's process has Seccomp %q, want 2", own["Seccomp"])
			}
			// The filter is the profile's: unshare(2) without
			// CAP_SYS_ADMIN is denied, which the kernel alone allows.
			if c.name != "caps" {
				if r := s.run(docker, "exec", name, "busybox", "unshare", "-U", "true"); r.code == 0 || !strings.Contains(r.stderr, "Operation not permitted") {
					t.Errorf("unshare -U in an exec under the default profile: %s", r)
				}
			}
		})
	}

	s.must(docker, "run", "-d", "--name", "cx", "busybox", "sleep", "1000")
	defer s.run(docker, "rm", "-f", "cx")
	idKeys := []string{"Uid", "Gid", "Groups"}
	own := statusLines(s.must(docker, "run", "--rm", "-u", "1000:1000", "busybox", "cat", "/proc/self/status").stdout, idKeys...)
	ex := statusLines(s.must(docker, "exec", "-u", "1000:1000", "cx", "cat", "/proc/self/status").stdout, idKeys...)
	for _, k := range idKeys {
		if ex[k] != own[k] {
			t.Errorf("exec -u 1000:1000: %s %q, run -u 1000:1000 has %q", k, ex[k], own[k])
		}
	}
	if !strings.HasPrefix(ex["Uid"], "1000\t") || !strings.HasPrefix(ex["Gid"], "1000\t") {
		t.Errorf("exec -u 1000:1000: Uid %q Gid %q", ex["Uid"], ex["Gid"])
	}
	if r := s.must(docker, "exec", "-w", "/tmp", "cx", "pwd"); r.stdout != "/tmp\n" {
		t.Errorf("exec -w /tmp: %q", r.stdout)
	}
	if r := s.must(docker, "exec", "-t", "cx", "busybox", "tty"); !strings.HasPrefix(r.stdout, "/dev/pts/") {
		t.Errorf("exec -t tty: %q", r.stdout)
	}
	if r := s.run(docker, "exec", "cx", "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("exec exit 7: %s", r)
	}
	if r := s.run(docker, "exec", "cx", "sh", "-c", "kill -9 $$"); r.code != 137 {
		t.Errorf("exec killed by SIGKILL: %s, want 137", r)
	}
	r := s.run(docker, "exec", "cx", "no-such-binary")
	if r.code != 126 || !strings.Contains(r.stderr, `exec: "no-such-binary": executable file not found in $PATH`) {
		t.Errorf("exec of a missing binary: %s", r)
	}
	// The exec's parent is lodge-exec: not lodge-monitor's fallback.
	s.must(docker, "exec", "-d", "cx", "sleep", "4321")
	if p := execParent(t, "4321"); p != "lodge-exec" {
		log, _ := os.ReadFile(filepath.Join(s.runDir, "lodged.log"))
		var notes []string
		for _, l := range strings.Split(string(log), "\n") {
			if strings.Contains(l, "lodge-exec") || strings.Contains(l, "exec plan") {
				notes = append(notes, l)
			}
		}
		t.Errorf("the exec's parent is %q, want lodge-exec; lodged.log says:\n%s", p, strings.Join(notes, "\n"))
	}
}

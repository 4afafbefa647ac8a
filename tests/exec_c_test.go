package tests

import (
	"fmt"
	"os"
	"os/exec"
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

// execParents finds the host processes running `sleep <tag>` and returns
// "pid parent-name" for each.
func execParents(t *testing.T, tag string) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var found []string
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
				found = append(found, fmt.Sprintf("%d %s", pid, strings.TrimSpace(string(comm))))
			}
		}
		if len(found) > 0 {
			return found
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no process runs sleep %s", tag)
	return nil
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
			os.WriteFile("/tmp/cexec-lodged.log", log, 0o644)
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
			r := s.run("timeout", "60", docker, "exec", name, "cat", "/proc/self/status")
			if r.code != 0 {
				ps, _ := exec.Command("ps", "-eo", "pid,ppid,stat,wchan:32,args").Output()
				var lines []string
				for _, l := range strings.Split(string(ps), "\n") {
					if strings.Contains(l, "lodge") || strings.Contains(l, "cat") {
						lines = append(lines, l)
					}
				}
				if pid := s.pidFile("lodged.pid"); pid > 0 {
					exec.Command("kill", "-QUIT", strconv.Itoa(pid)).Run() // its goroutines, to its log
					time.Sleep(2 * time.Second)
				}
				t.Fatalf("first exec: %s\nprocesses:\n%s", r, strings.Join(lines, "\n"))
			}
			ex := statusLines(r.stdout, secKeys...)
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

	s.must(docker, "run", "-d", "--name", "cx", "--oom-score-adj", "500", "busybox", "sleep", "1000")
	defer s.run(docker, "rm", "-f", "cx")
	if r := s.must(docker, "exec", "cx", "cat", "/proc/self/oom_score_adj"); r.stdout != "500\n" {
		t.Errorf("exec's oom_score_adj %q, want the container's 500", r.stdout)
	}
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
	tag := strconv.Itoa(100000 + int(time.Now().UnixNano()%800000))
	s.must(docker, "exec", "-d", "cx", "sleep", tag)
	if p := execParents(t, tag); len(p) != 1 || !strings.HasSuffix(p[0], " lodge-exec") {
		log, _ := os.ReadFile(filepath.Join(s.runDir, "lodged.log"))
		var notes []string
		for _, l := range strings.Split(string(log), "\n") {
			if strings.Contains(l, "lodge-exec") || strings.Contains(l, "exec plan") {
				notes = append(notes, l)
			}
		}
		t.Errorf("the exec's process and parent: %q, want one, under lodge-exec; lodged.log says:\n%s", p, strings.Join(notes, "\n"))
	}
}

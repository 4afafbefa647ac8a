package tests

import (
	"strings"
	"testing"
)

// A container gets Docker's defaults (the seccomp filter on, Docker's
// capability set, /proc's sensitive files masked) and no_new_privs, which
// Docker sets only when asked: a setuid program gives nothing unless the
// container says no-new-privileges=false. unconfined and --privileged lift
// what they should.
func TestSecurityDefaults(t *testing.T) {
	s, docker := containerSession(t)
	status := func(args ...string) map[string]string {
		t.Helper()
		out := s.must(docker, append(append([]string{"run", "--rm"}, args...), "busybox", "cat", "/proc/self/status")...).stdout
		m := map[string]string{}
		for _, l := range strings.Split(out, "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				m[k] = strings.TrimSpace(v)
			}
		}
		return m
	}
	def := status()
	if def["Seccomp"] != "2" {
		t.Errorf("default: Seccomp %q, want 2 (filter)", def["Seccomp"])
	}
	// Docker's default set: chown dac_override fowner fsetid kill setgid
	// setuid setpcap net_bind_service net_raw sys_chroot mknod audit_write
	// setfcap.
	if def["CapEff"] != "00000000a80425fb" {
		t.Errorf("default: CapEff %s, want Docker's 00000000a80425fb", def["CapEff"])
	}
	if def["NoNewPrivs"] != "1" {
		t.Errorf("default: NoNewPrivs %q, want 1", def["NoNewPrivs"])
	}
	for opt, want := range map[string]string{"no-new-privileges": "1", "no-new-privileges=false": "0", "no-new-privileges:false": "0", "no-new-privileges=true": "1"} {
		if m := status("--security-opt", opt); m["NoNewPrivs"] != want {
			t.Errorf("--security-opt %s: NoNewPrivs %q, want %s", opt, m["NoNewPrivs"], want)
		}
	}
	// An exec runs with the container's setting.
	s.must(docker, "run", "-d", "--name", "nnp-off", "--security-opt", "no-new-privileges=false", "busybox", "sleep", "300")
	t.Cleanup(func() { s.run(docker, "rm", "-f", "nnp-off") })
	if out := s.must(docker, "exec", "nnp-off", "cat", "/proc/self/status").stdout; !strings.Contains(out, "NoNewPrivs:\t0") {
		t.Errorf("exec in a container with no-new-privileges=false: %s", out)
	}
	// A value that is not a boolean is refused at create, as Docker does.
	if r := s.run(docker, "create", "--security-opt", "no-new-privileges=maybe", "busybox"); r.code == 0 || !strings.Contains(r.stderr, "invalid --security-opt") {
		t.Errorf("no-new-privileges=maybe: %s", r)
	}
	if out := s.must(docker, "info", "--format", "{{json .SecurityOptions}}").stdout; !strings.Contains(out, `"name=seccomp,profile=builtin"`) || !strings.Contains(out, `"name=no-new-privileges"`) {
		t.Errorf("docker info's security options: %s", out)
	}
	if m := status("--security-opt", "seccomp=unconfined"); m["Seccomp"] != "0" {
		t.Errorf("seccomp=unconfined: Seccomp %q, want 0", m["Seccomp"])
	}
	if m := status("--cap-drop", "ALL"); m["CapEff"] != "0000000000000000" {
		t.Errorf("--cap-drop ALL: CapEff %s", m["CapEff"])
	}
	// The filter blocks what Docker's profile blocks, such as unshare(2)
	// without CAP_SYS_ADMIN, which the kernel alone would allow here.
	if r := s.run(docker, "run", "--rm", "busybox", "busybox", "unshare", "-U", "true"); r.code == 0 || !strings.Contains(r.stderr, "Operation not permitted") {
		t.Errorf("unshare -U under the default profile: %s", r)
	}
	s.must(docker, "run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "busybox", "unshare", "-U", "true")
	// /proc/sys is read-only, unless systempaths=unconfined.
	procSys := func(args ...string) string {
		t.Helper()
		return s.must(docker, append(append([]string{"run", "--rm"}, args...), "busybox", "sh", "-c", `busybox awk '$5 == "/proc/sys" {print $6}' /proc/self/mountinfo`)...).stdout
	}
	if out := procSys(); !strings.HasPrefix(out, "ro") {
		t.Errorf("default: /proc/sys mount options %q, want ro", out)
	}
	if out := procSys("--security-opt", "systempaths=unconfined"); strings.TrimSpace(out) != "" {
		t.Errorf("systempaths=unconfined: /proc/sys is still mounted over (%q)", out)
	}
	// Masked /proc files read as empty: the ones of Docker's list this
	// kernel has (it has no /proc/kcore).
	out := s.must(docker, "run", "--rm", "busybox", "sh", "-c",
		`for f in /proc/keys /proc/timer_list /proc/kcore /proc/sched_debug; do [ -e $f ] && echo "$f $(cat $f | wc -c)"; done; true`).stdout
	if !strings.Contains(out, "/proc/") {
		t.Fatalf("none of the masked files exists: %q", out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasSuffix(l, " 0") {
			t.Errorf("not masked: %s bytes", l)
		}
	}
}

// TestCgroupNamespace: --cgroupns private gives the container a cgroup
// namespace of its own (its cgroup reads "/" in /proc/self/cgroup, and
// an exec joins it), host shares lodged's, and a container that names
// none gets Docker's default: private on a cgroup v2 host, host on v1.
func TestCgroupNamespace(t *testing.T) {
	s, docker := containerSession(t)
	nsOf := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(s.must(docker, append(append([]string{"run", "--rm"}, args...), "busybox", "busybox", "readlink", "/proc/self/ns/cgroup")...).stdout)
	}
	host1, host2 := nsOf("--cgroupns", "host"), nsOf("--cgroupns", "host")
	if host1 != host2 {
		t.Errorf("two --cgroupns host containers are in cgroup namespaces %s and %s", host1, host2)
	}
	s.must(docker, "run", "-d", "--name", "cgns", "--cgroupns", "private", "busybox", "sleep", "300")
	t.Cleanup(func() { s.run(docker, "rm", "-f", "cgns") })
	own := strings.TrimSpace(s.must(docker, "exec", "cgns", "busybox", "readlink", "/proc/1/ns/cgroup").stdout)
	if own == host1 {
		t.Errorf("--cgroupns private: the container is in the host mode's cgroup namespace %s", own)
	}
	if got := strings.TrimSpace(s.must(docker, "exec", "cgns", "busybox", "readlink", "/proc/self/ns/cgroup").stdout); got != own {
		t.Errorf("an exec is in cgroup namespace %s, its container in %s", got, own)
	}
	for _, l := range strings.Split(strings.TrimSpace(s.must(docker, "exec", "cgns", "cat", "/proc/self/cgroup").stdout), "\n") {
		if !strings.HasSuffix(l, ":/") {
			t.Errorf("--cgroupns private: /proc/self/cgroup line %q is not the namespace's root", l)
		}
	}
	want := "host"
	if fs := strings.TrimSpace(s.must("stat", "-f", "-c", "%T", "/sys/fs/cgroup").stdout); fs == "cgroup2fs" {
		want = "private"
	}
	s.must(docker, "create", "--name", "cgdef", "busybox", "true")
	if got := strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.HostConfig.CgroupnsMode}}", "cgdef").stdout); got != want {
		t.Errorf("default cgroup namespace mode %q, want %q (Docker's for this host)", got, want)
	}
	code, body := s.apiCall(t, "POST", "/v1.51/containers/create", "application/json", `{"Image":"busybox","HostConfig":{"CgroupnsMode":"shared"}}`)
	if code != 400 || !strings.Contains(body, "invalid cgroup namespace mode: shared") {
		t.Errorf("CgroupnsMode shared: %d %s", code, body)
	}
}

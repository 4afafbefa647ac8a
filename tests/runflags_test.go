package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunFlagsMatchDocker: the docker run flags that lodged serves are
// lodge run/create flags, and they ask lodged for the same thing: a
// container made by lodge create has what the same docker create gives
// (compared field by field in inspect), and lodge run starts it.
func TestRunFlagsMatchDocker(t *testing.T) {
	s, docker := containerSession(t)
	labels := filepath.Join(s.base, "labels")
	if err := os.WriteFile(labels, []byte("# team\nteam=blue\nowner=ops\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.must(docker, "network", "create", "--subnet", "10.77.0.0/24", "fixed")
	s.must(docker, "create", "--name", "src", "-v", "/data", "busybox", "true")
	cases := []struct {
		flags  []string
		fields []string
	}{
		{[]string{"--mount", "type=volume,source=mv,target=/m,readonly", "--mount", "type=tmpfs,target=/t,tmpfs-size=1m", "--mount", "type=bind,source=/etc,target=/hostetc"}, []string{".HostConfig.Mounts", ".Mounts"}},
		{[]string{"--volumes-from", "src:ro"}, []string{".HostConfig.VolumesFrom", ".Mounts"}},
		{[]string{"--ulimit", "nofile=1024:2048", "--ulimit", "nproc=512"}, []string{".HostConfig.Ulimits"}},
		{[]string{"--health-cmd", "test -e /tmp", "--health-interval", "5s", "--health-timeout", "1s", "--health-retries", "2", "--health-start-period", "1s", "--health-start-interval", "500ms"}, []string{".Config.Healthcheck"}},
		{[]string{"--no-healthcheck"}, []string{".Config.Healthcheck"}},
		{[]string{"--log-driver", "json-file", "--log-opt", "max-size=1m", "--log-opt", "max-file=2"}, []string{".HostConfig.LogConfig"}},
		{[]string{"--stop-signal", "SIGUSR1", "--stop-timeout", "7", "--domainname", "example.org"}, []string{".Config.StopSignal", ".Config.StopTimeout", ".Config.Domainname"}},
		{[]string{"--shm-size", "16m", "--sysctl", "net.ipv4.ping_group_range=0 0", "--group-add", "10", "--dns-option", "ndots:2", "--oom-score-adj", "100"}, []string{".HostConfig.ShmSize", ".HostConfig.Sysctls", ".HostConfig.GroupAdd", ".HostConfig.DnsOptions", ".HostConfig.OomScoreAdj"}},
		{[]string{"--label-file", labels, "--label", "team=red", "--annotation", "org.example/a=b"}, []string{".Config.Labels", ".HostConfig.Annotations"}},
		{[]string{"--ipc", "private", "--cgroupns", "private"}, []string{".HostConfig.IpcMode", ".HostConfig.CgroupnsMode"}},
		{[]string{"--network", "fixed", "--ip", "10.77.0.9", "--mac-address", "92:d0:c6:0a:29:33"}, []string{".NetworkSettings.Networks.fixed.IPAMConfig", ".NetworkSettings.Networks.fixed.MacAddress"}},
		{[]string{"--device", "/dev/null:/dev/mynull:rw"}, []string{".HostConfig.Devices"}},
		{[]string{"--device-read-bps", blockDev(t) + ":1mb", "--device-write-iops", blockDev(t) + ":100"}, []string{".HostConfig.BlkioDeviceReadBps", ".HostConfig.BlkioDeviceWriteIOps"}},
	}
	for i, tc := range cases {
		name := strings.Join(tc.flags, " ")
		dn, ln := "d"+string(rune('a'+i)), "l"+string(rune('a'+i))
		d := s.run(docker, append(append([]string{"create", "--name", dn}, tc.flags...), "busybox", "true")...)
		l := s.run("lodge", append(append([]string{"create", "--name", ln}, tc.flags...), "busybox", "true")...)
		if d.code != 0 && l.code != 0 {
			// Refused, by lodged, the same way for both: the same request.
			_, dmsg, _ := strings.Cut(d.stderr, "Error response from daemon: ")
			_, lmsg, _ := strings.Cut(l.stderr, "Error response from daemon: ")
			if dmsg == "" || strings.TrimSpace(dmsg) != strings.TrimSpace(lmsg) {
				t.Errorf("create %s refused differently:\ndocker: %s\nlodge: %s", name, d, l)
			}
			continue
		}
		if d.code != 0 || l.code != 0 {
			t.Errorf("create %s:\ndocker: %s\nlodge: %s", name, d, l)
			continue
		}
		for _, f := range tc.fields {
			want := s.must(docker, "inspect", "--format", "{{json "+f+"}}", dn).stdout
			got := s.must(docker, "inspect", "--format", "{{json "+f+"}}", ln).stdout
			if got != want {
				t.Errorf("%s: %s is\n%s from lodge create, and from docker create\n%s", name, f, got, want)
			}
		}
		s.must(docker, "rm", "-f", dn, ln)
	}

	// lodge run, with the flags the CLI itself acts on: --cidfile,
	// --attach, and an image it must pull first (--pull missing).
	cid := filepath.Join(s.base, "cid")
	os.Chown(s.base, s.u.uid, s.u.gid)
	r := s.must("lodge", "run", "--rm", "--cidfile", cid, "-a", "stdout", "busybox", "sh", "-c", "echo out; echo err >&2")
	if r.stdout != "out\n" || strings.Contains(r.stderr, "err") {
		t.Errorf("lodge run -a stdout: %s", r)
	}
	if b, err := os.ReadFile(cid); err != nil || len(strings.TrimSpace(string(b))) != 64 {
		t.Errorf("--cidfile: %q, %v", b, err)
	}
	// An image only in a registry: pulled first (progress on stderr, the
	// container's output alone on stdout); --pull never refuses.
	ref := startRegistry(t, "", "") + "/team/bb:1"
	s.must(docker, "tag", "busybox", ref)
	s.must(docker, "push", ref)
	s.must(docker, "rmi", ref)
	if r := s.run("lodge", "run", "--rm", "--pull", "never", ref, "true"); r.code == 0 || !strings.Contains(r.stderr, "No such image") {
		t.Errorf("lodge run --pull never with the image missing: %s", r)
	}
	r = s.must("lodge", "run", "--rm", ref, "echo", "pulled")
	if r.stdout != "pulled\n" || !strings.Contains(r.stderr, "Unable to find image '"+ref+"' locally") {
		t.Errorf("lodge run of an image to pull: %s", r)
	}
}

// blockDev is a block device of this machine, for the throttle flags.
func blockDev(t *testing.T) string {
	t.Helper()
	devs, _ := filepath.Glob("/sys/block/*")
	for _, d := range devs {
		p := "/dev/" + filepath.Base(d)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0 {
			return p
		}
	}
	t.Fatal("no block device in /sys/block")
	return ""
}

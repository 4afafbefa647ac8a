package tests

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestInspectHostConfigDefaults: inspect shows the IPC mode and the masked
// and read-only paths a container gets, as Docker fills them in, and the
// paths a create gives (systempaths=unconfined: none) are the ones used.
func TestInspectHostConfigDefaults(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "create", "--name", "plain", "busybox")
	s.must(docker, "create", "--name", "priv", "--privileged", "busybox")
	s.must(docker, "create", "--name", "share", "--ipc", "shareable", "busybox")
	f := "{{.HostConfig.IpcMode}} {{json .HostConfig.MaskedPaths}} {{json .HostConfig.ReadonlyPaths}}"
	r := s.must(docker, "inspect", "-f", f, "plain")
	if !strings.HasPrefix(r.stdout, "private [") || !strings.Contains(r.stdout, `"/proc/kcore"`) || !strings.Contains(r.stdout, `"/proc/sys"`) {
		t.Errorf("a plain container's host config: %s", r.stdout)
	}
	// Docker's /dev/shm size is recorded, and the storage driver with the
	// directories of the container's layer (overlay2's keys).
	r = s.must(docker, "inspect", "-f", "{{.HostConfig.ShmSize}} {{.Driver}} {{.GraphDriver.Name}} {{.GraphDriver.Data.UpperDir}} {{.GraphDriver.Data.MergedDir}}", "plain")
	if fs := strings.Fields(r.stdout); len(fs) < 3 || fs[0] != "67108864" || fs[1] == "" || fs[1] != fs[2] {
		t.Errorf("a plain container's shm size, driver and graph driver: %q", r.stdout)
	} else if fs[1] == "overlay" {
		if len(fs) != 5 || !strings.HasPrefix(fs[3], s.data) || !strings.HasPrefix(fs[4], s.data) {
			t.Errorf("overlay's UpperDir and MergedDir, in the data root %s: %q", s.data, r.stdout)
		} else if st, err := os.Stat(fs[3]); err != nil || !st.IsDir() {
			t.Errorf("UpperDir %s: %v", fs[3], err)
		}
	}
	r = s.must(docker, "image", "inspect", "-f", "{{.GraphDriver.Name}} {{.GraphDriver.Data.UpperDir}}", "busybox")
	if fs := strings.Fields(r.stdout); len(fs) == 0 || fs[0] == "overlay" && (len(fs) != 2 || !strings.HasPrefix(fs[1], s.data)) {
		t.Errorf("busybox's graph driver: %q", r.stdout)
	}
	if code, body := s.apiCall(t, "POST", "/v1.51/containers/create", "application/json", `{"Image":"busybox","HostConfig":{"ShmSize":-1}}`); code != 400 || !strings.Contains(body, "SHM size can not be less than 0") {
		t.Errorf("a negative ShmSize: %d %s", code, body)
	}
	if r := s.must(docker, "inspect", "-f", f, "priv"); r.stdout != "private null null\n" {
		t.Errorf("a privileged container's host config: %s", r.stdout)
	}
	if r := s.must(docker, "inspect", "-f", "{{.HostConfig.IpcMode}}", "share"); r.stdout != "shareable\n" {
		t.Errorf("--ipc shareable: %s", r.stdout)
	}
	count := "grep -c ' /proc/timer_list ' /proc/mounts; grep -c ' /proc/sys ' /proc/mounts; true"
	if r := s.must(docker, "run", "--rm", "busybox", "sh", "-c", count); r.stdout != "1\n1\n" {
		t.Errorf("/proc/timer_list masked and /proc/sys read-only by default: %s", r)
	}
	if r := s.must(docker, "run", "--rm", "--security-opt", "systempaths=unconfined", "busybox", "sh", "-c", count); r.stdout != "0\n0\n" {
		t.Errorf("systempaths=unconfined: %s", r)
	}
}

// TestCreateWorkingDirAndAnnotations: a working directory is cleaned and
// must be absolute, and the container list carries HostConfig.Annotations,
// as in Docker.
func TestCreateWorkingDirAndAnnotations(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "create", "--name", "wd", "-w", "/tmp/x/", "--annotation", "org.example.note=hi", "busybox")
	if r := s.must(docker, "inspect", "-f", "{{.Config.WorkingDir}}", "wd"); r.stdout != "/tmp/x\n" {
		t.Errorf("WorkingDir /tmp/x/: %q", r.stdout)
	}
	if r := s.run(docker, "create", "-w", "rel/dir", "busybox"); r.code == 0 || !strings.Contains(r.stderr, "the working directory 'rel/dir' is invalid, it needs to be an absolute path") {
		t.Errorf("a relative working directory: %s", r)
	}
	r := s.must("curl", "-s", "--unix-socket", s.socket(), "-G", "--data-urlencode", "all=1", "--data-urlencode", `filters={"name":["^wd$"]}`, "http://lodge/v1.51/containers/json")
	if !strings.Contains(r.stdout, `"Annotations":{"org.example.note":"hi"}`) {
		t.Errorf("the list's HostConfig.Annotations: %s", r.stdout)
	}
}

// TestLegacyLinks: --link gives the container Docker's link variables and
// lists the linked container under the link's name too; docker rm --link
// removes the link and leaves both containers.
func TestLegacyLinks(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "run", "-d", "--name", "db", "--expose", "5432", "-e", "PGUSER=me", "busybox", "sleep", "1000")
	ip := strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "db").stdout)
	r := s.must(docker, "run", "--rm", "--name", "web", "--link", "db:my-db", "busybox", "sh", "-c", "env | grep ^MY_DB_ | sort")
	for _, want := range []string{"MY_DB_NAME=/web/my-db", "MY_DB_ENV_PGUSER=me", "MY_DB_PORT=tcp://" + ip + ":5432",
		"MY_DB_PORT_5432_TCP_ADDR=" + ip, "MY_DB_PORT_5432_TCP_PORT=5432", "MY_DB_PORT_5432_TCP_PROTO=tcp"} {
		if ip == "" || !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("link variables lack %q:\n%s", want, r.stdout)
		}
	}
	s.must(docker, "run", "-d", "--name", "app", "--link", "db:alias", "busybox", "sleep", "1000")
	id := strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.Id}}", "db").stdout)
	if r := s.must(docker, "ps", "--no-trunc", "--filter", "id="+id, "--format", "{{.Names}}"); r.stdout != "db,app/alias\n" {
		t.Errorf("docker ps names of a linked container: %q", r.stdout)
	}
	// docker rm --link removes the link alone.
	s.must(docker, "rm", "--link", "/app/alias")
	if r := s.must(docker, "ps", "--no-trunc", "--filter", "id="+id, "--format", "{{.Names}} {{.State}}"); r.stdout != "db running\n" {
		t.Errorf("after rm --link: %q", r.stdout)
	}
	if r := s.must(docker, "inspect", "-f", "{{.State.Status}} {{.HostConfig.Links}}", "app"); r.stdout != "running []\n" {
		t.Errorf("the parent after rm --link: %q", r.stdout)
	}
	if r := s.run(docker, "rm", "--link", "/app/nolink"); r.code == 0 || !strings.Contains(r.stderr, "No such container") {
		t.Errorf("rm --link of no link: %s", r)
	}
	s.must(docker, "rm", "-f", "app", "db") // containers outlive lodged
}

// TestCreateMACOldAPI: a client before API 1.44 (docker-py, older
// CLIs) gives a MAC address as the container-wide Config.MacAddress,
// which Docker still honours for it.
func TestCreateMACOldAPI(t *testing.T) {
	s, docker := containerSession(t)
	r := s.must("curl", "-s", "--unix-socket", s.socket(), "-H", "Content-Type: application/json",
		"-d", `{"Image":"busybox","Cmd":["cat","/sys/class/net/eth0/address"],"MacAddress":"02:42:ac:11:00:99"}`,
		"http://lodge/v1.43/containers/create?name=macold")
	if !strings.Contains(r.stdout, `"Id"`) {
		t.Fatalf("create at API 1.43: %s", r)
	}
	if r := s.run(docker, "start", "-a", "macold"); r.code != 0 || r.stdout != "02:42:ac:11:00:99\n" {
		t.Errorf("Config.MacAddress at API 1.43: %s", r)
	}
}

// TestContainerSizes: inspect --size and ps -s give the writable
// layer's size and the whole filesystem's (the image's layers with it),
// as Docker does; a plain inspect leaves them out.
func TestContainerSizes(t *testing.T) {
	s, docker := compatSession(t)
	s.must(docker, "run", "--name", "sized", "busybox", "dd", "if=/dev/zero", "of=/big", "bs=1024", "count=1024")
	f := strings.Fields(s.must(docker, "inspect", "--size", "-f", "{{.SizeRw}} {{.SizeRootFs}}", "sized").stdout)
	if len(f) != 2 {
		t.Fatalf("inspect --size: %q", f)
	}
	rw, _ := strconv.ParseInt(f[0], 10, 64)
	rootfs, _ := strconv.ParseInt(f[1], 10, 64)
	imgSize, _ := strconv.ParseInt(strings.TrimSpace(s.must(docker, "image", "inspect", "-f", "{{.Size}}", "busybox").stdout), 10, 64)
	if rw < 1<<20 || rw > 2<<20 || imgSize <= 0 || rootfs < rw+imgSize*9/10 || rootfs > rw+imgSize*11/10 {
		t.Errorf("SizeRw %d, SizeRootFs %d: want at least the 1 MiB written, and that plus the image's %d", rw, rootfs, imgSize)
	}
	if out := strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.SizeRw}}", "sized").stdout); out != "<nil>" {
		t.Errorf("inspect without --size: SizeRw %q, want none", out)
	}
	if out := s.must(docker, "ps", "-as", "--filter", "name=sized", "--format", "{{.Size}}").stdout; !regexp.MustCompile(`^1\.\d+MB \(virtual \d\.\d+MB\)\n$`).MatchString(out) {
		t.Errorf("ps -s: %q", out)
	}
}

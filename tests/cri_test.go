package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// crictlPod is the pod crictl runs: a hostname, DNS settings for its
// resolv.conf and a host port.
const crictlPod = `{
  "metadata": {"name": "web", "namespace": "default", "uid": "crictl-uid-1", "attempt": 0},
  "hostname": "webpod",
  "log_directory": %q,
  "dns_config": {"servers": ["10.0.0.10"], "searches": ["svc.cluster.local"], "options": ["ndots:5"]},
  "port_mappings": [{"protocol": 0, "container_port": 8080, "host_port": %d}],
  "labels": {"app": "web"},
  "annotations": {"note": "from-crictl"}
}`

const crictlCtr = `{
  "metadata": {"name": "app", "attempt": 0},
  "image": {"image": "busybox:latest"},
  "command": ["sleep", "600"],
  "envs": [{"key": "GREETING", "value": "hi-from-env"}],
  "labels": {"tier": "front"},
  "log_path": "app/0.log"
}`

// crictlWeb serves the pod's port 8080, for its neighbour on localhost and
// for the host through the pod's host port.
const crictlWeb = `{
  "metadata": {"name": "web", "attempt": 0},
  "image": {"image": "busybox:latest"},
  "command": ["sh", "-c", "mkdir -p /www && echo pod-local > /www/index.html && exec httpd -f -p 8080 -h /www"]
}`

// crictlFor runs crictl against the session's CRI socket: must fails the
// test when crictl fails, run returns its result.
func crictlFor(t *testing.T, s *session) (must func(args ...string) string, run func(args ...string) result) {
	crictl := clientBinary(t, "crictl")
	ep := "unix://" + filepath.Join(s.runDir, "cri.sock")
	run = func(args ...string) result {
		t.Helper()
		return s.run(crictl, append([]string{"--runtime-endpoint", ep, "--image-endpoint", ep, "--timeout", "60s"}, args...)...)
	}
	must = func(args ...string) string {
		t.Helper()
		r := run(args...)
		if r.code != 0 {
			t.Fatalf("crictl %v: %s", args, r)
		}
		return r.stdout
	}
	return must, run
}

// TestCRIImages: the CRI's image service is the store docker uses, and
// PullImage takes the request's credentials.
func TestCRIImages(t *testing.T) {
	s, docker := compatSession(t)
	cc, ccRun := crictlFor(t, s)
	reg := startRegistry(t, "alice", "s3cret")
	ref := reg + "/private/bb:1"
	s.must(docker, "login", "-u", "alice", "-p", "s3cret", reg)
	s.must(docker, "tag", "busybox", ref)
	s.must(docker, "push", ref)
	s.must(docker, "rmi", ref)
	s.must(docker, "logout", reg) // lodged has no stored credentials now

	if r := ccRun("pull", ref); r.code == 0 {
		t.Errorf("crictl pull without credentials succeeded: %s", r)
	}
	cc("pull", "--creds", "alice:s3cret", ref)
	if out := cc("images"); !strings.Contains(out, reg+"/private/bb") {
		t.Errorf("crictl images after the pull:\n%s", out)
	}
	if out := s.must(docker, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout; !strings.Contains(out, ref) {
		t.Errorf("docker images lacks what crictl pulled:\n%s", out)
	}
	if out := cc("inspecti", ref); !strings.Contains(out, ref) {
		t.Errorf("crictl inspecti:\n%s", out)
	}
	if out := cc("imagefsinfo"); !strings.Contains(out, "usedBytes") {
		t.Errorf("crictl imagefsinfo:\n%s", out)
	}
	// The CRI removes an image, not a name: every name of it goes, as
	// containerd's CRI and dockershim do (busybox is the same image).
	cc("rmi", ref)
	for _, name := range []string{ref, "busybox"} {
		if r := s.run(docker, "image", "inspect", name); r.code == 0 {
			t.Errorf("%s is still there after crictl rmi", name)
		}
	}
}

// TestCRICrictl drives lodged's CRI socket with crictl, the Kubernetes
// project's CRI client, as a kubelet would: a pod sandbox, a container in
// it, exec, status, stop and removal; docker sees the pod's containers
// with Kubernetes' labels.
func TestCRICrictl(t *testing.T) {
	s, docker := compatSession(t)
	cc, ccRun := crictlFor(t, s)
	// Root passes the socket's 0600 mode; lodged still answers only its
	// owner.
	sock := filepath.Join(s.runDir, "cri.sock")
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cri.sock: %v, mode %v (want 0600)", err, fi.Mode().Perm())
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	vctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if v, err := runtimeapi.NewRuntimeServiceClient(conn).Version(vctx, &runtimeapi.VersionRequest{}); err == nil {
		t.Errorf("root (not the owner) was answered on cri.sock: %v", v)
	}
	if out := cc("version"); !strings.Contains(out, "RuntimeName:  lodge") || !strings.Contains(out, "RuntimeApiVersion:  v1") {
		t.Errorf("crictl version:\n%s", out)
	}
	// busybox came in with docker load: the CRI sees the same store.
	if out := cc("images"); !strings.Contains(out, "busybox") {
		t.Errorf("crictl images lacks the image docker loaded:\n%s", out)
	}
	port := freePort(t)
	dir := s.buildDir("crictl", map[string]string{
		"pod.json": fmt.Sprintf(crictlPod, filepath.Join(s.home, "podlogs"), port),
		"ctr.json": crictlCtr,
		"web.json": crictlWeb,
	})
	podJSON, ctrJSON := filepath.Join(dir, "pod.json"), filepath.Join(dir, "ctr.json")

	pod := strings.TrimSpace(cc("runp", podJSON))
	ctr := strings.TrimSpace(cc("create", pod, ctrJSON, podJSON))
	cc("start", ctr)
	if out := cc("pods", "--label", "app=web"); !strings.Contains(out, pod[:13]) || !strings.Contains(out, "Ready") {
		t.Errorf("crictl pods --label app=web:\n%s", out)
	}
	if out := cc("ps"); !strings.Contains(out, ctr[:13]) || !strings.Contains(out, "Running") || !strings.Contains(out, "app") {
		t.Errorf("crictl ps:\n%s", out)
	}
	// crictl prints the stdout ExecSync returned, a newline, then its
	// stderr and a newline, all on its own stdout.
	if out := cc("exec", "-s", ctr, "echo", "hi"); out != "hi\n\n\n" {
		t.Errorf("crictl exec -s echo hi: %q", out)
	}
	if out := cc("exec", "-s", ctr, "sh", "-c", "echo to-stderr >&2; echo $GREETING"); out != "hi-from-env\n\nto-stderr\n\n" {
		t.Errorf("crictl exec -s, env and stdout apart from stderr: %q", out)
	}
	resolv := cc("exec", "-s", ctr, "cat", "/etc/resolv.conf")
	t.Logf("the pod's resolv.conf:\n%s", resolv)
	for _, want := range []string{"nameserver 10.0.0.10", "search svc.cluster.local", "ndots:5"} {
		if !strings.Contains(resolv, want) {
			t.Errorf("the pod's resolv.conf lacks %q:\n%s", want, resolv)
		}
	}
	if out := cc("exec", "-s", ctr, "hostname"); out != "webpod\n\n\n" {
		t.Errorf("the pod's hostname in its container: %q", out)
	}
	// A second container shares the pod's localhost, and the pod's host
	// port reaches it.
	web := strings.TrimSpace(cc("create", pod, filepath.Join(dir, "web.json"), podJSON))
	cc("start", web)
	var got string
	for range 50 {
		r := ccRun("exec", "-s", ctr, "sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | nc 127.0.0.1 8080`)
		if got = r.stdout; strings.Contains(got, "\r\n\r\npod-local\n") {
			break
		}
		got = r.String()
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(got, "\r\n\r\npod-local\n") {
		t.Errorf("app reaching web on the pod's localhost: %q", got)
	}
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); body != "pod-local\n" {
		t.Errorf("the pod's host port %d answered %q", port, body)
	}
	if out := cc("ps", "--pod", pod, "--state", "running", "-q"); len(strings.Fields(out)) != 2 {
		t.Errorf("crictl ps --pod: want app and web running:\n%s", out)
	}
	var status struct {
		Status struct {
			State   string
			Network struct{ IP string }
		}
	}
	if err := json.Unmarshal([]byte(cc("inspectp", "-o", "json", pod)), &status); err != nil {
		t.Fatal(err)
	}
	if status.Status.State != "SANDBOX_READY" || !strings.HasPrefix(status.Status.Network.IP, "10.88.") {
		t.Errorf("inspectp: state %q, IP %q (want ready, on 10.88.0.0/16)", status.Status.State, status.Status.Network.IP)
	}
	var cstatus struct {
		Status struct {
			State   string
			LogPath string
		}
	}
	if err := json.Unmarshal([]byte(cc("inspect", "-o", "json", ctr)), &cstatus); err != nil {
		t.Fatal(err)
	}
	if cstatus.Status.State != "CONTAINER_RUNNING" || cstatus.Status.LogPath != filepath.Join(s.home, "podlogs", "app/0.log") {
		t.Errorf("inspect: state %q, log path %q", cstatus.Status.State, cstatus.Status.LogPath)
	}

	// docker sees both, with Kubernetes' names and labels.
	ps := s.must(docker, "ps", "-a", "--no-trunc", "--format", "{{.Names}} {{.Labels}}").stdout
	for _, want := range []string{"k8s_POD_web_default_crictl-uid-1_0", "k8s_app_web_default_crictl-uid-1_0", "io.kubernetes.pod.name=web", "io.kubernetes.container.name=app", "tier=front", "annotation.note=from-crictl"} {
		if !strings.Contains(ps, want) {
			t.Errorf("docker ps -a lacks %q:\n%s", want, ps)
		}
	}
	if out := s.must(docker, "port", "k8s_POD_web_default_crictl-uid-1_0").stdout; !strings.Contains(out, fmt.Sprintf("8080/tcp -> 0.0.0.0:%d", port)) {
		t.Errorf("the pod's host port: docker port says\n%s", out)
	}

	cc("stop", ctr)
	if out := cc("ps", "-a", "--state", "exited"); !strings.Contains(out, ctr[:13]) {
		t.Errorf("crictl ps -a --state exited after stop:\n%s", out)
	}
	cc("stopp", pod)
	if out := cc("pods", "--state", "notready"); !strings.Contains(out, pod[:13]) {
		t.Errorf("crictl pods --state notready after stopp:\n%s", out)
	}
	cc("rmp", pod)
	if out := strings.TrimSpace(s.must(docker, "ps", "-a", "--filter", "label=io.kubernetes.pod.uid=crictl-uid-1", "-q").stdout); out != "" {
		t.Errorf("containers left after rmp: %q", out)
	}
}

// TestCRIOff: --cri=false serves no CRI socket, and the Docker API as
// before.
func TestCRIOff(t *testing.T) {
	s := newSession(t, lookupUser(t, "LODGE_TEST_USER"))
	s.start("--cri=false")
	if _, err := os.Stat(filepath.Join(s.runDir, "cri.sock")); !os.IsNotExist(err) {
		t.Errorf("cri.sock with --cri=false: %v", err)
	}
	s.must("lodge", "info")
}

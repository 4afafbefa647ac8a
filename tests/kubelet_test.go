package tests

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// kubeletConfig is a standalone kubelet's configuration (no API server:
// its pods come from staticPodPath) for a rootless user on lodge's CRI,
// the settings the README's kubelet section shows. Filled in: the CRI
// socket twice, the manifest and log directories, the ports, the
// FlexVolume directory (/usr/libexec/kubernetes by default).
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://%[1]s
imageServiceEndpoint: unix://%[1]s
staticPodPath: %[2]s
fileCheckFrequency: 1s
podLogsDir: %[3]s
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
localStorageCapacityIsolation: false
volumePluginDir: %[6]s
protectKernelDefaults: false
featureGates:
  KubeletInUserNamespace: true
address: 127.0.0.1
port: %[4]d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[5]d
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
`

// kubeletPod is the static pod: web serves on the pod's localhost, client
// fetches from it, says so on its stdout and exits, so that the kubelet
// restarts it (restartPolicy Always). web's readiness is an httpGet
// probe, which the kubelet dials at the pod's IP; its liveness an exec
// probe (ExecSync through the CRI). httpd, pid 1, ignores SIGTERM: a
// short grace period keeps the pod's removal short.
const kubeletPod = `apiVersion: v1
kind: Pod
metadata:
  name: duo
  namespace: default
  labels:
    app: duo
spec:
  restartPolicy: Always
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: busybox:latest
    imagePullPolicy: Never
    command: ["sh", "-c", "mkdir -p /www && echo pod-local > /www/index.html && exec httpd -f -p 8080 -h /www"]
    readinessProbe:
      httpGet:
        path: /index.html
        port: 8080
      periodSeconds: 1
    livenessProbe:
      exec:
        command: ["test", "-f", "/www/index.html"]
      periodSeconds: 1
  - name: client
    image: busybox:latest
    imagePullPolicy: Never
    command: ["sh", "-c", "until wget -q -O - http://127.0.0.1:8080/; do sleep 0.2; done; echo fetched; sleep 5; exit 3"]
`

// TestKubeletStaticPod runs a real kubelet, standalone, as the test user
// against lodged's CRI: it runs a two-container static pod whose
// containers share localhost, restarts the one that exits, its logs are
// where the kubelet put them, and removing the manifest removes the pod.
func TestKubeletStaticPod(t *testing.T) {
	kubelet := clientBinary(t, "kubelet")
	s, docker := compatSession(t)
	cc, _ := crictlFor(t, s)

	dir := filepath.Join(s.home, "kubelet")
	manifests, logs := filepath.Join(dir, "manifests"), filepath.Join(dir, "pods")
	for _, d := range []string{dir, manifests, logs} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, s.u.uid, s.u.gid); err != nil {
			t.Fatal(err)
		}
	}
	config := filepath.Join(dir, "kubelet.yaml")
	port := freePort(t)
	s.userFile(config, fmt.Sprintf(kubeletConfig, filepath.Join(s.runDir, "cri.sock"), manifests, logs, port, freePort(t), filepath.Join(dir, "volume-plugins")))
	manifest := filepath.Join(manifests, "duo.yaml")
	s.userFile(manifest, kubeletPod)

	// In lodged's user namespace and its bridges' network namespace
	// (lodge unshare --rootless-netns), as Usernetes runs its kubelet in
	// rootlesskit's: the kubelet tolerates there, with
	// KubeletInUserNamespace, what an unprivileged user may not do (open
	// /dev/kmsg, set kernel sysctls), which on the host stops it; it
	// reaches the pods' IPs (httpGet probes); and, in a mount namespace
	// of its own, it gets /var/lib/kubelet (the device plugins' socket, a
	// path no setting moves) and /var/log/containers (likewise) on tmpfs.
	// Its root dir, pod logs and manifests stay where lodged sees them.
	k := s.background(s.home, "lodge", "unshare", "--rootless-netns", "unshare", "--mount", "sh", "-c",
		`mount -t tmpfs -o mode=0755 tmpfs /var/lib && mount -t tmpfs -o mode=0755 tmpfs /var/log && exec "$0" "$@"`,
		kubelet, "--config", config, "--root-dir", filepath.Join(dir, "root"), "--cert-dir", filepath.Join(dir, "pki"),
		"--hostname-override", "lodge-node", "--v", "2")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kubelet's output (the end):\n%s", tail(k.output(), 12000))
		}
	})

	// The pod runs, with Kubernetes' labels, under the dockershim names.
	var pod string
	waitForOr(t, 90*time.Second, func() bool {
		if !k.running() {
			t.Fatalf("the kubelet exited:\n%s", tail(k.output(), 8000))
		}
		pod = strings.TrimSpace(cc("pods", "-q", "--name", "duo-lodge-node", "--state", "ready"))
		return pod != "" && len(strings.Fields(cc("ps", "-q", "--pod", pod, "--state", "running"))) == 2
	}, "the static pod and its two containers running")
	var status struct {
		Status struct {
			Metadata struct{ UID string }
			Labels   map[string]string
		}
	}
	if err := json.Unmarshal([]byte(cc("inspectp", "-o", "json", pod)), &status); err != nil {
		t.Fatal(err)
	}
	uid := status.Status.Metadata.UID
	if uid == "" || status.Status.Labels["io.kubernetes.pod.name"] != "duo-lodge-node" || status.Status.Labels["app"] != "duo" {
		t.Errorf("the pod's uid %q and labels %v", uid, status.Status.Labels)
	}
	ps := s.must(docker, "ps", "--filter", "label=io.kubernetes.pod.uid="+uid,
		"--format", `{{.Names}} {{.Label "io.kubernetes.pod.namespace"}}/{{.Label "io.kubernetes.pod.name"}}`).stdout
	for _, ctr := range []string{"POD", "web", "client"} {
		// client's attempt may be past 0 already.
		if want := fmt.Sprintf("k8s_%s_duo-lodge-node_default_%s_", ctr, uid); !strings.Contains(ps, want) {
			t.Errorf("docker ps lacks %s*:\n%s", want, ps)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(ps), "\n") {
		if !strings.HasSuffix(line, " default/duo-lodge-node") {
			t.Errorf("docker ps: a container of the pod without its labels: %q", line)
		}
	}

	// client reached web on the pod's localhost, said so at the log path
	// the kubelet gave, in the CRI's format, and exited: the kubelet
	// starts it again, a new attempt. (It removes the dead attempts
	// before the last, with their logs.)
	var client struct {
		Status struct {
			ID       string
			Metadata struct{ Attempt int }
			LogPath  string
		}
	}
	waitForOr(t, 90*time.Second, func() bool {
		ids := strings.Fields(cc("ps", "-a", "-q", "--pod", pod, "--name", "^client$"))
		if len(ids) == 0 || json.Unmarshal([]byte(cc("inspect", "-o", "json", ids[0])), &client) != nil {
			return false
		}
		b, _ := os.ReadFile(client.Status.LogPath)
		return client.Status.Metadata.Attempt >= 1 && strings.Contains(string(b), " stdout F fetched\n")
	}, "client restarted by the kubelet (attempt 1 or later) and its output")
	logDir := filepath.Join(logs, "default_duo-lodge-node_"+uid, "client")
	if want := filepath.Join(logDir, fmt.Sprintf("%d.log", client.Status.Metadata.Attempt)); client.Status.LogPath != want {
		t.Errorf("client's log path %q, want the kubelet's %q", client.Status.LogPath, want)
	}
	b, _ := os.ReadFile(client.Status.LogPath)
	if !strings.Contains(string(b), " stdout F pod-local\n") {
		t.Errorf("client's log (CRI format) lacks what web served on localhost:\n%s", b)
	}
	if out := cc("logs", client.Status.ID); !strings.Contains(out, "pod-local\nfetched\n") {
		t.Errorf("crictl logs of the restarted client: %q", out)
	}
	name := fmt.Sprintf("k8s_client_duo-lodge-node_default_%s_%d", uid, client.Status.Metadata.Attempt)
	if out := s.must(docker, "logs", name).stdout; !strings.Contains(out, "pod-local\nfetched\n") {
		t.Errorf("docker logs %s: %q", name, out)
	}

	// The kubelet's own view (its /pods, as kubectl would show the pod,
	// on its port in the namespace it runs in): web ready by its httpGet
	// probe and never restarted (its exec liveness probe holds), client
	// restarted.
	kubeletPid := processNamed(t, k.cmd.Process.Pid, "kubelet")
	waitForOr(t, 30*time.Second, func() bool {
		st := kubeletPodStatus(t, kubeletPid, port, "duo-lodge-node")
		return st["web"].Ready && st["client"].RestartCount >= 1
	}, "the kubelet's /pods to show web ready and client restarted")
	if st := kubeletPodStatus(t, kubeletPid, port, "duo-lodge-node"); st["web"].RestartCount != 0 {
		t.Errorf("web restarted %d times: its exec liveness probe failed", st["web"].RestartCount)
	}

	// Without its manifest, the kubelet stops the pod and removes it.
	if err := os.Remove(manifest); err != nil {
		t.Fatal(err)
	}
	waitForOr(t, 100*time.Second, func() bool {
		return strings.TrimSpace(cc("pods", "-q")) == "" && strings.TrimSpace(cc("ps", "-qa")) == ""
	}, "the pod and its containers removed after the manifest went")
	if out := s.must(docker, "ps", "-aq").stdout; strings.TrimSpace(out) != "" {
		t.Errorf("docker ps -a after the pod went: %q", out)
	}
	if !k.running() {
		t.Errorf("the kubelet exited:\n%s", tail(k.output(), 8000))
	}
	syscall.Kill(-k.cmd.Process.Pid, syscall.SIGTERM)
}

// waitForOr polls ok until it holds, failing the test after d with what
// it waited for.
func waitForOr(t *testing.T, d time.Duration, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("waited %s for %s", d, what)
}

// ctrState is what the kubelet reports of a container.
type ctrState struct {
	Ready        bool
	RestartCount int
}

// kubeletPodStatus is the containers' status of the named pod in the
// kubelet's /pods (its HTTPS port, a self-signed certificate; anonymous
// is allowed in the test's configuration), dialled in the network
// namespace of the process kubeletPid.
func kubeletPodStatus(t *testing.T, kubeletPid, port int, name string) map[string]ctrState {
	t.Helper()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialInNetns(kubeletPid, network, addr)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dial, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/pods", port))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var list struct {
		Items []struct {
			Metadata struct{ Name string }
			Status   struct {
				ContainerStatuses []struct {
					Name string
					ctrState
				}
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil
	}
	out := map[string]ctrState{}
	for _, p := range list.Items {
		if p.Metadata.Name == name {
			for _, c := range p.Status.ContainerStatuses {
				out[c.Name] = c.ctrState
			}
		}
	}
	return out
}

// processNamed is the process named name (its comm) among root and its
// descendants, waiting for it to appear.
func processNamed(t *testing.T, root int, name string) int {
	t.Helper()
	var pid int
	waitForOr(t, 30*time.Second, func() bool {
		for _, p := range append([]int{root}, descendants([]int{root})...) {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p)); err == nil && strings.TrimSpace(string(b)) == name {
				pid = p
				return true
			}
		}
		return false
	}, "a process named "+name)
	return pid
}

// dialInNetns dials addr from the network namespace of pid: the socket is
// made on a thread moved there (the tests run as root), which goes back
// before it is let go.
func dialInNetns(pid int, network, addr string) (net.Conn, error) {
	runtime.LockOSThread()
	own, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer own.Close()
	target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	c, derr := net.DialTimeout(network, addr, 5*time.Second)
	if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err != nil {
		// Left locked, the thread ends with this goroutine instead of
		// running others in the wrong namespace.
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("back to the test's network namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return c, derr
}

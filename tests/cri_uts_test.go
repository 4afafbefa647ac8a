package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// utsPod is a pod with a hostname of its own; utsCtr one of its
// containers, allowed to rename it (CAP_SYS_ADMIN, as root in it).
const (
	utsPod = `{
  "metadata": {"name": "uts", "namespace": "default", "uid": "uts-uid-1", "attempt": 0},
  "hostname": "utspod",
  "log_directory": %q
}`
	utsNodePod = `{
  "metadata": {"name": "utsnode", "namespace": "default", "uid": "uts-uid-2", "attempt": 0},
  "log_directory": %q,
  "linux": {"security_context": {"namespace_options": {"network": 2}}}
}`
	utsCtr = `{
  "metadata": {"name": %q, "attempt": 0},
  "image": {"image": "busybox:latest"},
  "command": ["sleep", "600"],
  "linux": {"security_context": {"capabilities": {"add_capabilities": ["SYS_ADMIN"]}}}
}`
)

// utsNSOf is the namespace link of a process the test (root) can read.
func utsNSOf(t *testing.T, pid, kind string) string {
	t.Helper()
	l, err := os.Readlink(filepath.Join("/proc", pid, "ns", kind))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestCRIPodSharesUTS: a pod's containers share the sandbox's UTS
// namespace, as containerd's and CRI-O's do: the same /proc/self/ns/uts,
// the pod's hostname in each, and a hostname one of them sets is the
// other's too.
func TestCRIPodSharesUTS(t *testing.T) {
	s, docker := compatSession(t)
	cc, _ := crictlFor(t, s)
	dir := s.buildDir("crictl-uts", map[string]string{
		"pod.json":  fmt.Sprintf(utsPod, filepath.Join(s.home, "podlogs")),
		"a.json":    fmt.Sprintf(utsCtr, "a"),
		"b.json":    fmt.Sprintf(utsCtr, "b"),
		"node.json": fmt.Sprintf(utsNodePod, filepath.Join(s.home, "podlogs")),
	})
	podJSON := filepath.Join(dir, "pod.json")
	pod := strings.TrimSpace(cc("runp", podJSON))
	a := strings.TrimSpace(cc("create", pod, filepath.Join(dir, "a.json"), podJSON))
	b := strings.TrimSpace(cc("create", pod, filepath.Join(dir, "b.json"), podJSON))
	cc("start", a)
	cc("start", b)

	// crictl prints ExecSync's stdout, a newline, its stderr, a newline.
	execOut := func(ctr string, cmd ...string) string {
		t.Helper()
		out, _, _ := strings.Cut(cc(append([]string{"exec", "-s", ctr}, cmd...)...), "\n\n")
		return strings.TrimSpace(out)
	}
	sbPid := strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.State.Pid}}", pod).stdout)
	sbNS := utsNSOf(t, sbPid, "uts")
	if sbNS == utsNSOf(t, "self", "uts") {
		t.Fatalf("the sandbox is in the host's UTS namespace %s", sbNS)
	}
	for _, ctr := range []string{a, b} {
		if ns := execOut(ctr, "busybox", "readlink", "/proc/self/ns/uts"); ns != sbNS {
			t.Errorf("container %.12s: UTS namespace %q, the sandbox's %q", ctr, ns, sbNS)
		}
		if h := execOut(ctr, "hostname"); h != "utspod" {
			t.Errorf("container %.12s: hostname %q, want the pod's utspod", ctr, h)
		}
	}
	// One namespace, so one name: what a renames, b sees.
	cc("exec", "-s", a, "hostname", "renamed")
	if h := execOut(b, "hostname"); h != "renamed" {
		t.Errorf("b's hostname after a renamed the pod: %q", h)
	}
	cc("stopp", pod)
	cc("rmp", pod)

	// A pod on the node's network has the node's UTS namespace and name,
	// as containerd's and CRI-O's (lodged's, which is the host's).
	nodeJSON := filepath.Join(dir, "node.json")
	node := strings.TrimSpace(cc("runp", nodeJSON))
	n := strings.TrimSpace(cc("create", node, filepath.Join(dir, "a.json"), nodeJSON))
	cc("start", n)
	host, _ := os.Hostname()
	if ns, h := execOut(n, "busybox", "readlink", "/proc/self/ns/uts"), execOut(n, "hostname"); ns != utsNSOf(t, "self", "uts") || h != host {
		t.Errorf("a container of a pod on the node's network: UTS namespace %s, hostname %q; want the host's %s, %q", ns, h, utsNSOf(t, "self", "uts"), host)
	}
	cc("stopp", node)
	cc("rmp", node)
}

// TestUTSModeContainer: the Docker API takes Podman's UTS mode
// container:X (the docker CLI refuses it itself, so the Go client asks):
// the container joins X's UTS namespace and has X's hostname; a missing X
// is refused at create, a stopped one at start.
func TestUTSModeContainer(t *testing.T) {
	s, docker := compatSession(t)
	ctx := t.Context()
	cli, err := client.New(client.WithHost("unix://"+s.socket()), client.WithHTTPClient(s.apiClient()))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	s.must(docker, "run", "-d", "--name", "utsa", "--hostname", "alpha", "busybox", "sleep", "600")
	s.must(docker, "run", "-d", "--name", "other", "busybox", "sleep", "600")
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       "utsb",
		Config:     &container.Config{Image: "busybox", Cmd: []string{"sleep", "600"}},
		HostConfig: &container.HostConfig{UTSMode: "container:utsa", CapAdd: []string{"SYS_ADMIN"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	ins, err := cli.ContainerInspect(ctx, "utsb", client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ins.Container.Config.Hostname != "alpha" || ins.Container.HostConfig.UTSMode != "container:utsa" {
		t.Errorf("inspect utsb: hostname %q, UTS mode %q; want utsa's alpha, container:utsa",
			ins.Container.Config.Hostname, ins.Container.HostConfig.UTSMode)
	}
	nsIn := func(name string) string {
		return strings.TrimSpace(s.must(docker, "exec", name, "busybox", "readlink", "/proc/self/ns/uts").stdout)
	}
	if a, b, o := nsIn("utsa"), nsIn("utsb"), nsIn("other"); a != b || a == o {
		t.Errorf("UTS namespaces: utsa %s, utsb %s, other %s; want utsb's utsa's, other's apart", a, b, o)
	}
	if h := strings.TrimSpace(s.must(docker, "exec", "utsb", "hostname").stdout); h != "alpha" {
		t.Errorf("hostname in utsb: %q, want alpha", h)
	}
	// lodge's CLI sends the mode as given.
	if h := strings.TrimSpace(s.must("lodge", "run", "--rm", "--uts", "container:utsa", "busybox", "hostname").stdout); h != "alpha" {
		t.Errorf("lodge run --uts container:utsa hostname: %q, want alpha", h)
	}
	s.must(docker, "exec", "utsb", "hostname", "beta")
	if h := strings.TrimSpace(s.must(docker, "exec", "utsa", "hostname").stdout); h != "beta" {
		t.Errorf("utsa's hostname after utsb renamed their namespace: %q", h)
	}

	// A target that does not exist: a 400 naming it.
	code, body := s.apiCall(t, "POST", "/containers/create", "application/json",
		`{"Image":"busybox","Cmd":["true"],"HostConfig":{"UTSMode":"container:nope"}}`)
	if code != 400 || !strings.Contains(body, "nope") {
		t.Errorf("create joining a missing container's UTS: %d %s", code, body)
	}
	_, err = cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: "busybox", Cmd: []string{"true"}, Hostname: "mine"},
		HostConfig: &container.HostConfig{UTSMode: "container:utsa"},
	})
	if err == nil || !strings.Contains(err.Error(), "conflicting options: hostname and the UTS mode") {
		t.Errorf("a hostname of its own in another's UTS namespace: %v", err)
	}
	// A target that is not running: refused at start, as for --ipc.
	s.must(docker, "create", "--name", "stopped", "busybox", "sleep", "600")
	late, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: "busybox", Cmd: []string{"true"}},
		HostConfig: &container.HostConfig{UTSMode: "container:stopped"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerStart(ctx, late.ID, client.ContainerStartOptions{}); err == nil || !strings.Contains(err.Error(), "cannot join UTS of a non running container") {
		t.Errorf("start joining a stopped container's UTS: %v", err)
	}
	if st := s.must(docker, "inspect", "-f", "{{.State.Status}}", late.ID).stdout; strings.TrimSpace(st) != "created" {
		t.Errorf("state after the refused start: %q", st)
	}
	// As for --network and --ipc container:X (and in Docker), X may be
	// removed while a joiner runs: the namespace lives on with it.
	s.must(docker, "rm", "-f", "utsa")
	if h := strings.TrimSpace(s.must(docker, "exec", "utsb", "hostname").stdout); h != "beta" {
		t.Errorf("utsb's hostname once utsa is gone: %q", h)
	}
}

package cri

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lodge-containers/lodge/daemon"
	"github.com/lodge-containers/lodge/daemon/exec"
	"github.com/lodge-containers/lodge/daemon/stream"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/image"
)

// fakeContainers keeps what Create is given and answers Inspect and List
// from it, as lodge's container service would.
type fakeContainers struct {
	n     int
	ctrs  map[string]*container.InspectResponse
	order []string
	calls []string
}

func (f *fakeContainers) Create(_ context.Context, name string, cfg *container.Config, hc *container.HostConfig, _ *network.NetworkingConfig) (container.CreateResponse, error) {
	f.n++
	id := fmt.Sprintf("%064d", f.n)
	ins := &container.InspectResponse{ID: id, Name: "/" + name, Created: "2026-01-02T03:04:05Z", Config: cfg, HostConfig: hc,
		State: &container.State{Status: container.StateCreated}, Image: "sha256:img"}
	if hc.NetworkMode == PodNetwork {
		ins.NetworkSettings = &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{PodNetwork: {IPAddress: netip.MustParseAddr("10.88.0.2")}}}
	}
	if f.ctrs == nil {
		f.ctrs = map[string]*container.InspectResponse{}
	}
	f.ctrs[id] = ins
	f.order = append(f.order, id)
	f.calls = append(f.calls, "create "+name)
	return container.CreateResponse{ID: id}, nil
}

func (f *fakeContainers) get(ref string) (*container.InspectResponse, error) {
	for id, c := range f.ctrs {
		if strings.HasPrefix(id, ref) {
			return c, nil
		}
	}
	return nil, errdefs.NotFoundf("No such container: %s", ref)
}

func (f *fakeContainers) Start(_ context.Context, ref string) error {
	c, err := f.get(ref)
	if err != nil {
		return err
	}
	c.State.Status, c.State.Running = container.StateRunning, true
	f.calls = append(f.calls, "start "+c.Name)
	return nil
}

func (f *fakeContainers) Stop(_ context.Context, ref string, _ *int, _ string) error {
	c, err := f.get(ref)
	if err != nil {
		return err
	}
	c.State.Status, c.State.Running, c.State.ExitCode = container.StateExited, false, 137
	f.calls = append(f.calls, "stop "+c.Name)
	return nil
}

func (f *fakeContainers) Remove(_ context.Context, ref string, _ daemon.RemoveOptions) error {
	c, err := f.get(ref)
	if err != nil {
		return err
	}
	delete(f.ctrs, c.ID)
	f.calls = append(f.calls, "remove "+c.Name)
	return nil
}

func (f *fakeContainers) Inspect(ref string) (container.InspectResponse, error) {
	c, err := f.get(ref)
	if err != nil {
		return container.InspectResponse{}, err
	}
	return *c, nil
}

func (f *fakeContainers) List(opts daemon.ListOptions) ([]container.Summary, error) {
	var out []container.Summary
	for _, id := range f.order {
		c, ok := f.ctrs[id]
		if !ok {
			continue
		}
		match := true
		for _, kv := range opts.Filters["label"] {
			k, v, _ := strings.Cut(kv, "=")
			if c.Config.Labels[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, container.Summary{ID: id, Labels: c.Config.Labels, State: c.State.Status, ImageID: c.Image, Created: 1})
		}
	}
	return out, nil
}

// fakeExecs runs nothing: it answers each command with fixed output.
type fakeExecs struct {
	cmd    []string
	killed bool
	block  chan struct{}
}

func (f *fakeExecs) ExecCreate(_ context.Context, _ string, req container.ExecCreateRequest) (string, error) {
	f.cmd = req.Cmd
	return "e1", nil
}

func (f *fakeExecs) ExecStartWith(_ context.Context, _ string, _ exec.StartOptions, client stream.Stream) error {
	if f.block != nil {
		<-f.block
		return nil
	}
	// Docker's frames: stdout, then stderr.
	for _, fr := range []struct {
		stream byte
		text   string
	}{{1, "out\n"}, {2, "err\n"}} {
		hdr := []byte{fr.stream, 0, 0, 0, 0, 0, 0, byte(len(fr.text))}
		if _, err := client.Write(append(hdr, fr.text...)); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeExecs) ExecInspect(string) (container.ExecInspectResponse, error) {
	code := 3
	return container.ExecInspectResponse{ExitCode: &code}, nil
}

func (f *fakeExecs) Kill(string, syscall.Signal) {
	f.killed = true
	close(f.block)
}

// fakePauseImages has no image until the pause image is imported; it
// keeps what the import was given.
type fakePauseImages struct {
	fakeImages
	loaded  int
	layer   []byte
	changes []string
}

func (f *fakePauseImages) Import(_ context.Context, r io.Reader, ref string, changes []string, _, _ string, _ image.ProgressSink) (string, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	f.loaded++
	f.layer, f.changes = b, changes
	f.fakeImages.imgs = append(f.fakeImages.imgs, imageWithTag(ref))
	return "sha256:pause", nil
}

func TestPodLifecycle(t *testing.T) {
	pauseBin := filepath.Join(t.TempDir(), "lodge-init")
	if err := os.WriteFile(pauseBin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctrs, execs, imgs, nets := &fakeContainers{}, &fakeExecs{}, &fakePauseImages{}, &fakeNetworks{}
	rt := runtimeapi.NewRuntimeServiceClient(serve(t, New(Backends{Containers: ctrs, Execs: execs, Images: imgs, Networks: nets, PauseBinary: pauseBin}, quiet)))
	ctx := context.Background()
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "ns", Uid: "u1", Attempt: 1},
		Hostname: "webpod", Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"a": "b"},
		DnsConfig:    &runtimeapi.DNSConfig{Servers: []string{"10.0.0.10"}, Searches: []string{"svc"}},
		PortMappings: []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 8080}},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD}}},
	}
	run, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
	if err != nil {
		t.Fatal(err)
	}
	sb := ctrs.ctrs[run.PodSandboxId]
	if imgs.loaded != 1 || sb.Config.Image != pauseImage || sb.Name != "/k8s_POD_web_ns_u1_1" || sb.Config.Hostname != "webpod" ||
		sb.HostConfig.NetworkMode != PodNetwork || sb.HostConfig.DNS[0].String() != "10.0.0.10" || nets.made == nil {
		t.Fatalf("sandbox made as %+v / %+v (pause loaded %d times)", sb.Config, sb.HostConfig, imgs.loaded)
	}
	if b := sb.HostConfig.PortBindings[network.MustParsePort("80/tcp")]; len(b) != 1 || b[0].HostPort != "8080" {
		t.Errorf("port bindings %v", sb.HostConfig.PortBindings)
	}
	st, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: run.PodSandboxId})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.Status.Network.GetIp() != "10.88.0.2" || st.Status.Labels["app"] != "web" ||
		st.Status.Annotations["a"] != "b" || st.Status.Metadata.Attempt != 1 || st.Status.CreatedAt == 0 {
		t.Errorf("PodSandboxStatus = %v", st.Status)
	}

	_, err = rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: run.PodSandboxId, SandboxConfig: podCfg, Config: &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: "busybox"},
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{Privileged: true}},
	}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "privileged") {
		t.Errorf("privileged container in a pod that is not: %v", err)
	}
	cr, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: run.PodSandboxId, SandboxConfig: podCfg, Config: &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: "busybox"},
		Command: []string{"sleep"}, Args: []string{"60"}, Envs: []*runtimeapi.KeyValue{{Key: "A", Value: []byte("1")}},
		Labels: map[string]string{"tier": "front"},
		Mounts: []*runtimeapi.Mount{{HostPath: "/srv", ContainerPath: "/data", Readonly: true}},
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			RunAsUser: &runtimeapi.Int64Value{Value: 1000}, RunAsGroup: &runtimeapi.Int64Value{Value: 2000}, ReadonlyRootfs: true,
			Capabilities:     &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN"}, DropCapabilities: []string{"CHOWN"}},
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := ctrs.ctrs[cr.ContainerId]
	join := container.NetworkMode("container:" + run.PodSandboxId)
	if c.Name != "/k8s_app_web_ns_u1_0" || c.HostConfig.NetworkMode != join || string(c.HostConfig.IpcMode) != string(join) || string(c.HostConfig.PidMode) != string(join) ||
		c.Config.User != "1000:2000" || !c.HostConfig.ReadonlyRootfs || c.HostConfig.CapAdd[0] != "NET_ADMIN" || c.HostConfig.CapDrop[0] != "CHOWN" ||
		c.Config.Entrypoint[0] != "sleep" || c.Config.Cmd[0] != "60" || c.Config.Env[0] != "A=1" || !c.HostConfig.Mounts[0].ReadOnly ||
		c.Config.Labels[labelSandboxID] != run.PodSandboxId || c.Config.Labels["tier"] != "front" ||
		string(c.HostConfig.UTSMode) != string(join) || c.Config.Hostname != "" || len(c.HostConfig.DNS) != 1 || c.HostConfig.DNSSearch[0] != "svc" {
		t.Fatalf("container made as %+v / %+v", c.Config, c.HostConfig)
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId}); err != nil {
		t.Fatal(err)
	}
	list, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: run.PodSandboxId, LabelSelector: map[string]string{"tier": "front"}}})
	if err != nil || len(list.Containers) != 1 || list.Containers[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING || list.Containers[0].Metadata.Name != "app" {
		t.Fatalf("ListContainers = %v, %v", list, err)
	}
	ex, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: cr.ContainerId, Cmd: []string{"sh", "-c", "x"}})
	if err != nil || string(ex.Stdout) != "out\n" || string(ex.Stderr) != "err\n" || ex.ExitCode != 3 {
		t.Fatalf("ExecSync = %v, %v", ex, err)
	}
	execs.block = make(chan struct{})
	_, err = rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: cr.ContainerId, Cmd: []string{"sleep", "9"}, Timeout: 1})
	if status.Code(err) != codes.DeadlineExceeded || !execs.killed {
		t.Errorf("ExecSync past its timeout = %v (killed %v)", err, execs.killed)
	}

	ctrs.calls = nil
	if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: run.PodSandboxId}); err != nil {
		t.Fatal(err)
	}
	if want := "stop /k8s_app_web_ns_u1_0,stop /k8s_POD_web_ns_u1_1"; strings.Join(ctrs.calls, ",") != want {
		t.Errorf("StopPodSandbox: %v, want %s", ctrs.calls, want)
	}
	pods, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}}})
	if err != nil || len(pods.Items) != 1 || pods.Items[0].Metadata.Name != "web" {
		t.Fatalf("ListPodSandbox(not ready) = %v, %v", pods, err)
	}
	cs, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cr.ContainerId})
	if err != nil || cs.Status.State != runtimeapi.ContainerState_CONTAINER_EXITED || cs.Status.ExitCode != 137 || cs.Status.Reason != "Error" {
		t.Fatalf("ContainerStatus after stop = %v, %v", cs, err)
	}
	if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: run.PodSandboxId}); err != nil {
		t.Fatal(err)
	}
	if len(ctrs.ctrs) != 0 {
		t.Errorf("left after RemovePodSandbox: %v", ctrs.ctrs)
	}
	// Gone already: the CRI's stop and remove are idempotent.
	if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: run.PodSandboxId}); err != nil {
		t.Errorf("StopPodSandbox again: %v", err)
	}
	if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: run.PodSandboxId}); err != nil {
		t.Errorf("RemovePodSandbox again: %v", err)
	}
}

// TestPodOnTheNodesNetwork: a pod on the node's network has the node's
// UTS namespace too (lodged's: one the host owns cannot be joined from
// lodged's user namespace), and so have its containers.
func TestPodOnTheNodesNetwork(t *testing.T) {
	pauseBin := filepath.Join(t.TempDir(), "lodge-init")
	if err := os.WriteFile(pauseBin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctrs := &fakeContainers{}
	rt := runtimeapi.NewRuntimeServiceClient(serve(t, New(Backends{Containers: ctrs, Execs: &fakeExecs{}, Images: &fakePauseImages{}, Networks: &fakeNetworks{}, PauseBinary: pauseBin}, quiet)))
	ctx := context.Background()
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "node", Namespace: "ns", Uid: "u2"},
		Hostname: "ignored",
		Linux:    &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}},
	}
	run, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
	if err != nil {
		t.Fatal(err)
	}
	sb := ctrs.ctrs[run.PodSandboxId]
	if sb.HostConfig.NetworkMode != "host" || sb.HostConfig.UTSMode != "host" || sb.Config.Hostname != "" {
		t.Errorf("sandbox on the node's network made as %+v / %+v", sb.Config, sb.HostConfig)
	}
	cr, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: run.PodSandboxId, SandboxConfig: podCfg, Config: &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: "busybox"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := ctrs.ctrs[cr.ContainerId]
	if c.HostConfig.NetworkMode != "host" || c.HostConfig.UTSMode != "host" || string(c.HostConfig.IpcMode) != "container:"+run.PodSandboxId || c.Config.Hostname != "" {
		t.Errorf("container of a pod on the node's network made as %+v / %+v", c.Config, c.HostConfig)
	}
}

// TestPodCgroupParentIgnoredOnce: a kubelet with cgroupsPerQOS names its
// pod cgroup, which lodged cannot use outside its delegated tree: the
// pods run, and the log says so once ("/" asks for nothing).
func TestPodCgroupParentIgnoredOnce(t *testing.T) {
	pauseBin := filepath.Join(t.TempDir(), "lodge-init")
	if err := os.WriteFile(pauseBin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	ctrs := &fakeContainers{}
	rt := runtimeapi.NewRuntimeServiceClient(serve(t, New(Backends{Containers: ctrs, Execs: &fakeExecs{}, Images: &fakePauseImages{}, Networks: &fakeNetworks{}, PauseBinary: pauseBin}, log)))
	for i, parent := range []string{"/", "/kubepods/burstable/podu1", "/kubepods/besteffort/podu2"} {
		_, err := rt.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: strconv.Itoa(i)},
			Linux:    &runtimeapi.LinuxPodSandboxConfig{CgroupParent: parent},
		}})
		if err != nil {
			t.Fatalf("a pod with cgroup parent %q: %v", parent, err)
		}
	}
	if n := strings.Count(logged.String(), "cgroup parent is ignored"); n != 1 || !strings.Contains(logged.String(), "/kubepods/burstable/podu1") {
		t.Errorf("warned %d times, want once naming the first parent:\n%s", n, logged.String())
	}
}

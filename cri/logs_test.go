package cri

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lodge-containers/lodge/errdefs"
)

// reopeningContainers adds the ability to reopen a log to the fake.
type reopeningContainers struct {
	*fakeContainers
	reopened []string
}

func (r *reopeningContainers) ReopenLog(ref string) error {
	c, err := r.get(ref)
	if err != nil {
		return err
	}
	if c.State.Status != "running" {
		return errdefs.Conflictf("container %s is not running", ref)
	}
	r.reopened = append(r.reopened, ref)
	return nil
}

// TestContainerLogs: a container with a log path logs with the k8s-file
// driver at the sandbox's log directory joined with it, the directory
// made; ContainerStatus reports the path; ReopenContainerLog reaches the
// backend for a running container only.
func TestContainerLogs(t *testing.T) {
	pauseBin := filepath.Join(t.TempDir(), "lodge-init")
	if err := os.WriteFile(pauseBin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctrs := &reopeningContainers{fakeContainers: &fakeContainers{}}
	rt := runtimeapi.NewRuntimeServiceClient(serve(t, New(Backends{Containers: ctrs, Execs: &fakeExecs{}, Images: &fakePauseImages{}, Networks: &fakeNetworks{}, PauseBinary: pauseBin}, quiet)))
	ctx := context.Background()
	logDir := filepath.Join(t.TempDir(), "pods", "ns_web_u1")
	podCfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "ns", Uid: "u1"}, LogDirectory: logDir}
	run, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
	if err != nil {
		t.Fatal(err)
	}
	create := func(podCfg *runtimeapi.PodSandboxConfig, logPath string) (string, error) {
		cr, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: run.PodSandboxId, SandboxConfig: podCfg, Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: "busybox"}, LogPath: logPath,
		}})
		return cr.GetContainerId(), err
	}
	id, err := create(podCfg, "app/0.log")
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(logDir, "app", "0.log")
	lc := ctrs.ctrs[id].HostConfig.LogConfig
	if lc.Type != "k8s-file" || lc.Config["path"] != want || len(lc.Config) != 1 {
		t.Errorf("log config %+v, want k8s-file at %s", lc, want)
	}
	if fi, err := os.Stat(filepath.Dir(want)); err != nil || !fi.IsDir() {
		t.Errorf("the log's directory was not made: %v", err)
	}
	st, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil || st.Status.LogPath != want {
		t.Errorf("ContainerStatus log path: %v, %v", st.GetStatus().GetLogPath(), err)
	}
	// No log path: lodge's own default log, nothing in the log directory.
	if id, err := create(podCfg, ""); err != nil || ctrs.ctrs[id].HostConfig.LogConfig.Type != "" {
		t.Errorf("no log path: %v, %+v", err, ctrs.ctrs[id].HostConfig.LogConfig)
	}
	relative := &runtimeapi.PodSandboxConfig{Metadata: podCfg.Metadata, LogDirectory: "pods/x"}
	if _, err := create(relative, "app/0.log"); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a relative log directory: %v", err)
	}

	if _, err := rt.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("ReopenContainerLog of a created container: %v, want FailedPrecondition", err)
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil || len(ctrs.reopened) != 1 || ctrs.reopened[0] != id {
		t.Errorf("ReopenContainerLog: %v (reopened %v)", err, ctrs.reopened)
	}
	if _, err := rt.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: "nosuch"}); status.Code(err) != codes.NotFound {
		t.Errorf("ReopenContainerLog of no container: %v", err)
	}
	// A backend without the ability says it is not built.
	plain := runtimeapi.NewRuntimeServiceClient(serve(t, New(Backends{Containers: ctrs.fakeContainers}, quiet)))
	if _, err := plain.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); status.Code(err) != codes.Unimplemented {
		t.Errorf("ReopenContainerLog without the backend's ability: %v", err)
	}
}

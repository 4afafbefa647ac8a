package cri

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestSecurityContext: what critest's security-context tests ask of a
// container reaches lodge's create as Docker's options: seccomp (none is
// unconfined in the CRI; Localhost is the file's JSON), masked and
// read-only paths. no_new_privs is said either way: lodged's default
// (on) must not override the kubelet's false (allowPrivilegeEscalation).
func TestSecurityContext(t *testing.T) {
	const nnpOff = "no-new-privileges=false"
	profile := filepath.Join(t.TempDir(), "block-chmod.json")
	const profileJSON = `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}`
	if err := os.WriteFile(profile, []byte(profileJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		sec     *runtimeapi.LinuxContainerSecurityContext
		wantOpt []string
		wantErr bool
	}{
		{"no security context", nil, []string{nnpOff, "seccomp=unconfined"}, false},
		{"nil profile", &runtimeapi.LinuxContainerSecurityContext{}, []string{nnpOff, "seccomp=unconfined"}, false},
		{"runtime default", &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{}}, []string{nnpOff}, false},
		{"deprecated runtime/default", &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "runtime/default"}, []string{nnpOff}, false},
		{"unconfined", &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}}, []string{nnpOff, "seccomp=unconfined"}, false},
		{"localhost", &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: profile}}, []string{nnpOff, "seccomp=" + profileJSON}, false},
		{"deprecated localhost/", &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "localhost/" + profile}, []string{nnpOff, "seccomp=" + profileJSON}, false},
		{"no new privileges", &runtimeapi.LinuxContainerSecurityContext{NoNewPrivs: true, Seccomp: &runtimeapi.SecurityProfile{}}, []string{"no-new-privileges=true"}, false},
		{"localhost missing", &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: profile + ".none"}}, nil, true},
		{"localhost relative", &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "x.json"}}, nil, true},
	} {
		c, hc := &container.Config{}, &container.HostConfig{}
		err := securityContext(tc.sec, c, hc)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err %v", tc.name, err)
			continue
		}
		if !tc.wantErr && !slices.Equal(hc.SecurityOpt, tc.wantOpt) {
			t.Errorf("%s: security options %q, want %q", tc.name, hc.SecurityOpt, tc.wantOpt)
		}
	}

	hc := &container.HostConfig{}
	if err := securityContext(&runtimeapi.LinuxContainerSecurityContext{MaskedPaths: []string{"/proc/kcore"}, ReadonlyPaths: []string{"/proc/sys"}}, &container.Config{}, hc); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hc.MaskedPaths, []string{"/proc/kcore"}) || !slices.Equal(hc.ReadonlyPaths, []string{"/proc/sys"}) {
		t.Errorf("masked %q, read-only %q", hc.MaskedPaths, hc.ReadonlyPaths)
	}
	hc = &container.HostConfig{}
	if err := securityContext(&runtimeapi.LinuxContainerSecurityContext{}, &container.Config{}, hc); err != nil {
		t.Fatal(err)
	}
	if hc.MaskedPaths != nil || hc.ReadonlyPaths != nil {
		t.Errorf("none asked, yet masked %q, read-only %q (lodge's defaults are nil)", hc.MaskedPaths, hc.ReadonlyPaths)
	}
}

// TestPodSysctls: a pod's sysctls are set on its sandbox, which holds the
// namespaces they belong to.
func TestPodSysctls(t *testing.T) {
	ctrs := &fakeContainers{}
	rt := runtimeapi.NewRuntimeServiceClient(serve(t, New(Backends{Containers: ctrs, Images: &fakePauseImages{}, Networks: &fakeNetworks{}, PauseBinary: pauseBinary(t)}, quiet)))
	run, err := rt.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "s", Namespace: "ns", Uid: "u"},
		Linux:    &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"kernel.shm_rmid_forced": "1"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := ctrs.ctrs[run.PodSandboxId].HostConfig.Sysctls; got["kernel.shm_rmid_forced"] != "1" {
		t.Errorf("the sandbox's sysctls: %v", got)
	}
}

// TestPrivileged: a privileged pod runs, and its privileged containers are
// lodge's --privileged (what a user namespace allows), with no seccomp
// whatever profile they name; a pod that is not privileged holds none.
func TestPrivileged(t *testing.T) {
	profile := filepath.Join(t.TempDir(), "deny-all.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ERRNO"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctrs := &fakeContainers{}
	rt := runtimeapi.NewRuntimeServiceClient(serve(t, New(Backends{Containers: ctrs, Images: &fakePauseImages{}, Networks: &fakeNetworks{}, PauseBinary: pauseBinary(t)}, quiet)))
	ctx := context.Background()
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u"},
		Linux:    &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{Privileged: true}},
	}
	run, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
	if err != nil {
		t.Fatalf("a privileged pod: %v", err)
	}
	if ctrs.ctrs[run.PodSandboxId].HostConfig.Privileged {
		t.Errorf("the pause container is privileged")
	}
	cr, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: run.PodSandboxId, SandboxConfig: podCfg, Config: &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: "busybox"},
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			Privileged: true, Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: profile},
			MaskedPaths: []string{"/proc/kcore"},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	hc := ctrs.ctrs[cr.ContainerId].HostConfig
	if !hc.Privileged || !slices.Equal(hc.SecurityOpt, []string{"no-new-privileges=false"}) || hc.MaskedPaths != nil {
		t.Errorf("privileged container: privileged %v, security options %q, masked %q", hc.Privileged, hc.SecurityOpt, hc.MaskedPaths)
	}
}

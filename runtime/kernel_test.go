package runtime

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lodge-containers/lodge/internal/nstest"
	"github.com/lodge-containers/lodge/internal/testgate"
	"github.com/lodge-containers/lodge/shim"
)

// The kernel tests need a user namespace: TestMain re-executes the test
// binary into one (nstest.Reexec); the same binary then also serves as
// libcontainer's init and as the monitor.

func TestMain(m *testing.M) {
	if IsInit() {
		Init()
	}
	if IsMonitor() {
		if err := MonitorMain(); err != nil {
			fmt.Fprintln(os.Stderr, "monitor:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	nstest.Reexec()
	os.Exit(m.Run())
}

// busyboxRootfs makes a rootfs with the host's static busybox and its applets.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		testgate.SkipOrFail(t, "busybox-static is not installed")
	}
	root := t.TempDir()
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "echo", "cat", "sleep", "id", "ls", "true", "false", "stty"} {
		os.Symlink("busybox", filepath.Join(root, "bin", a))
	}
	return root
}

func minimalSpec(root string, args []string) *specs.Spec {
	return &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: root},
		Hostname: "box",
		Process: &specs.Process{
			Args: args,
			Env:  []string{"PATH=/bin"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  []string{"CAP_KILL", "CAP_CHOWN"},
				Effective: []string{"CAP_KILL", "CAP_CHOWN"},
				Permitted: []string{"CAP_KILL", "CAP_CHOWN"},
			},
			NoNewPrivileges: true,
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "mount"}, {Type: "ipc"}, {Type: "uts"}, {Type: "network"}},
			Devices: []specs.LinuxDevice{
				{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
				{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
			},
			MaskedPaths: []string{"/proc/kcore"},
		},
	}
}

// startTestContainer writes a bundle and monitor config and starts the monitor.
func startTestContainer(t *testing.T, spec *specs.Spec, tty bool) (shim.MonitorConfig, int) {
	t.Helper()
	dir := t.TempDir()
	sock, err := os.MkdirTemp("", "lodge-rt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sock) })
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := shim.MonitorConfig{
		ID:        "c" + strings.ReplaceAll(t.Name(), "/", "-"),
		StateRoot: filepath.Join(sock, "state"),
		Bundle:    dir,
		LogPath:   filepath.Join(dir, "log.json"),
		ExitPath:  filepath.Join(dir, "exit.json"),
		SockDir:   filepath.Join(sock, "s"),
		Tty:       tty,
		OpenStdin: true,
		StdinOnce: true,
		Width:     100, Height: 30,
	}
	b, _ = json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "monitor.json")
	os.WriteFile(cfgPath, b, 0o600)
	ctx := t.Context()
	pid, err := StartMonitor(ctx, cfgPath, filepath.Join(dir, "monitor.log"))
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "monitor.log"))
		t.Fatalf("StartMonitor: %v\n%s", err, log)
	}
	return cfg, pid
}

func TestMonitorRunsContainer(t *testing.T) {
	nstest.RequireRootless(t)
	root := busyboxRootfs(t)
	spec := minimalSpec(root, []string{"sh", "-c", "read x; echo out:$x; echo err >&2; cat /etc/hostname 2>/dev/null; hostname; exit 3"})
	cfg, pid := startTestContainer(t, spec, false)
	if pid <= 0 {
		t.Fatalf("pid %d", pid)
	}
	conn, err := Attach(cfg.SockDir, shim.AttachRequest{Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := NewCtl(cfg.SockDir).Go(); err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("hi\n"))
	conn.CloseWrite()
	var out, errb strings.Builder
	for {
		stream, p, err := shim.ReadFrame(conn, nil)
		if err == io.EOF || err != nil {
			break
		}
		if stream == shim.StreamStdout {
			out.Write(p)
		} else {
			errb.Write(p)
		}
	}
	st, err := Wait(t.Context(), cfg.SockDir)
	if err != nil && err != ErrMonitorGone {
		t.Fatal(err)
	}
	if err == ErrMonitorGone {
		time.Sleep(200 * time.Millisecond)
		st, err = ReadExit(cfg.ExitPath)
		if err != nil {
			t.Fatal(err)
		}
	}
	if st.ExitCode != 3 {
		t.Errorf("exit code %d, want 3", st.ExitCode)
	}
	if out.String() != "out:hi\nbox\n" || errb.String() != "err\n" {
		t.Errorf("stdout %q stderr %q", out.String(), errb.String())
	}
	log, _ := os.ReadFile(cfg.LogPath)
	if !strings.Contains(string(log), `"log":"out:hi\n","stream":"stdout"`) || !strings.Contains(string(log), `"log":"err\n","stream":"stderr"`) {
		t.Errorf("json log:\n%s", log)
	}
}

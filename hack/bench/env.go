package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lodge-containers/lodge/hack/fixture"
	"github.com/lodge-containers/lodge/internal/buildbin"
)

// env is where the benchmark runs: the unprivileged user, a scratch
// directory, lodge's binaries, and the engines it could start.
type env struct {
	uid, gid int
	name     string
	base     string
	bin      string
	archive  string
	engines  []*engine

	// The loopback registry and archive the images group moves.
	registry, registryWhy string
	pullArchive           string
	pullMiB               float64
}

// engine is one container engine answering the Docker API.
type engine struct {
	name      string // lodge, docker, podman
	sock      string
	home      string
	run       string // its XDG_RUNTIME_DIR
	cmd       *exec.Cmd
	why       string // why it is not available, when it is not
	pids      func() []int
	dockerEnv []string
}

func newEnv() (*env, error) {
	e := &env{uid: os.Getuid(), gid: os.Getgid()}
	if u, err := user.Current(); err == nil {
		e.name = u.Username
	}
	if os.Getuid() == 0 {
		name := os.Getenv("LODGE_TEST_USER")
		if name == "" {
			name = "lodgetest"
		}
		u, err := user.Lookup(name)
		if err != nil {
			return nil, fmt.Errorf("running as root needs the test user %s (hack/setup-root.sh makes it): %w", name, err)
		}
		e.uid, _ = strconv.Atoi(u.Uid)
		e.gid, _ = strconv.Atoi(u.Gid)
		e.name = name
	}
	base, err := os.MkdirTemp("", "lodge-bench-")
	if err != nil {
		return nil, err
	}
	e.base = base
	e.bin = filepath.Join(base, "bin")
	if err := os.MkdirAll(e.bin, 0o755); err != nil {
		return nil, err
	}
	// The test user runs what is built here.
	if err := os.Chmod(base, 0o755); err != nil {
		return nil, err
	}
	if err := installBinaries(filepath.Join(base, "build"), e.bin, "lodged", "lodge-monitor", "lodge-shim", "lodge-exec", "lodge-wait", "lodge-usernet", "lodge", "lodge-init", "lodge-keeper"); err != nil {
		return nil, err
	}
	a, err := fixture.Archive("busybox:latest", nil)
	if err != nil {
		return nil, fmt.Errorf("busybox-static is needed for the benchmark image: %w", err)
	}
	e.archive = filepath.Join(base, "busybox.tar")
	if err := os.WriteFile(e.archive, a, 0o644); err != nil {
		return nil, err
	}
	if e.registry, err = e.startRegistry(); err != nil {
		e.registryWhy = err.Error()
	}
	for _, start := range []func() *engine{e.startLodge, e.startDocker, e.startPodman} {
		eng := start()
		if eng.why == "" {
			if r := e.docker(eng, "load", "-i", e.archive); r.err != nil {
				eng.why = "loading the busybox image: " + r.String()
			}
		}
		if eng.why != "" {
			fmt.Fprintf(os.Stderr, "bench: %s not measured: %s\n", eng.name, eng.why)
		}
		e.engines = append(e.engines, eng)
	}
	return e, nil
}

func (e *env) engine(name string) *engine {
	for _, eng := range e.engines {
		if eng.name == name && eng.why == "" {
			return eng
		}
	}
	return nil
}

// installBinaries builds names into tmp, then copies them into dir as
// `make install` does (install(1) writes a copy), and removes tmp.
//
// The copy is what a user runs, and it matters to the memory figures: the
// Go linker writes its output in large chunks, and since Linux 6.16 ext4
// keeps such a file in the page cache in folios of up to 2 MiB, which the
// kernel maps whole at a fault. lodged, run straight from the linker's
// output, kept 8.5 MiB of its text and ~12 MiB of its read-only data
// mapped after releasing them at rest (any instruction in a 2 MiB folio
// maps it back); run from an installed copy, it kept ~5 MiB.
func installBinaries(tmp, dir string, names ...string) error {
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	if err := buildbin.Build(".", tmp, os.Stderr, names...); err != nil {
		return err
	}
	for _, n := range names {
		if err := copyFile(filepath.Join(tmp, n), filepath.Join(dir, n)); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies src to dst (mode 0755) as install(1) and cp do, through
// copy_file_range: one write(2) of the whole binary would land in large
// folios again.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// dirFor makes a private directory tree owned by the user.
func (e *env) dirFor(name string) (home, run string, err error) {
	home = filepath.Join(e.base, name, "home")
	run = filepath.Join(e.base, name, "run")
	for _, d := range []string{filepath.Join(e.base, name), home, run} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", "", err
		}
		if err := os.Chown(d, e.uid, e.gid); err != nil {
			return "", "", err
		}
	}
	return home, run, nil
}

func (e *env) userEnv(home, run string, extra ...string) []string {
	return append([]string{
		"HOME=" + home, "USER=" + e.name, "LOGNAME=" + e.name,
		"PATH=" + e.bin + ":/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
		"XDG_RUNTIME_DIR=" + run, "XDG_DATA_HOME=" + filepath.Join(home, ".local/share"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"DOCKER_CONFIG=" + filepath.Join(home, ".docker"),
	}, extra...)
}

// command runs as the benchmark's user.
func (e *env) command(envv []string, name string, args ...string) *exec.Cmd {
	if !strings.Contains(name, "/") {
		if p := filepath.Join(e.bin, name); fileExists(p) {
			name = p
		} else if p, err := exec.LookPath(name); err == nil {
			name = p
		}
	}
	cmd := exec.Command(name, args...)
	cmd.Env = envv
	cmd.Dir = "/"
	if os.Getuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(e.uid), Gid: uint32(e.gid)}}
	}
	return cmd
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

type out struct {
	stdout, stderr string
	err            error
}

func (o out) String() string { return fmt.Sprintf("%v: %s %s", o.err, o.stdout, o.stderr) }

func runCmd(cmd *exec.Cmd) out {
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	return out{so.String(), se.String(), err}
}

// docker runs the docker CLI against an engine.
func (e *env) docker(eng *engine, args ...string) out {
	cmd := e.command(append(e.userEnv(eng.home, eng.run), "DOCKER_HOST=unix://"+eng.sock), "docker", args...)
	return runCmd(cmd)
}

func waitSocket(path string, d time.Duration, alive func() bool) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if alive != nil && !alive() {
			return fmt.Errorf("exited before %s appeared", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not appear within %s", path, d)
}

func (e *env) startLodge() *engine {
	home, run, err := e.dirFor("lodge")
	eng := &engine{name: "lodge", home: home, run: run, sock: filepath.Join(run, "lodge", "lodge.sock")}
	if err != nil {
		eng.why = err.Error()
		return eng
	}
	r := runCmd(e.command(e.userEnv(home, run), "lodge", "daemon", "start"))
	if r.err != nil {
		eng.why = "lodge daemon start: " + r.String()
	}
	return eng
}

func (e *env) startDocker() *engine {
	home, run, err := e.dirFor("docker")
	eng := &engine{name: "docker", home: home, run: run, sock: filepath.Join(run, "docker.sock")}
	if err != nil {
		eng.why = err.Error()
		return eng
	}
	script := "/usr/share/docker.io/contrib/dockerd-rootless.sh"
	if !fileExists(script) {
		eng.why = "Docker rootless is not installed (apt-get install docker.io rootlesskit slirp4netns)"
		return eng
	}
	// dockerd pulls from inside its own network namespace: let it reach
	// the benchmark's registry on the host's loopback (10.0.2.2), plain
	// HTTP as a loopback registry is for the other engines. Debian's
	// script passes --disable-host-loopback; the flags it appends win.
	if e.registry != "" {
		if err := e.writeUserFile(home, ".config/docker/daemon.json", fmt.Sprintf(`{"insecure-registries": [%q]}`, e.registryFor(eng))); err != nil {
			eng.why = err.Error()
			return eng
		}
	}
	cmd := e.command(e.userEnv(home, run, "DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=--disable-host-loopback=false"), script, "--data-root", filepath.Join(home, "docker-data"))
	logf, _ := os.Create(filepath.Join(e.base, "docker", "dockerd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		eng.why = err.Error()
		return eng
	}
	eng.cmd = cmd
	if err := waitSocket(eng.sock, 60*time.Second, func() bool { return cmd.ProcessState == nil }); err != nil {
		eng.why = "dockerd-rootless.sh: " + err.Error() + " (see " + logf.Name() + ")"
		return eng
	}
	// The socket exists before dockerd answers.
	for i := 0; i < 300; i++ {
		if c, err := net.Dial("unix", eng.sock); err == nil {
			c.Close()
			if r := e.docker(eng, "version"); r.err == nil {
				return eng
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	eng.why = "dockerd did not answer"
	return eng
}

func (e *env) startPodman() *engine {
	home, run, err := e.dirFor("podman")
	eng := &engine{name: "podman", home: home, run: run, sock: filepath.Join(run, "podman.sock")}
	if err != nil {
		eng.why = err.Error()
		return eng
	}
	if _, err := exec.LookPath("podman"); err != nil {
		eng.why = "Podman is not installed (apt-get install podman)"
		return eng
	}
	// crun refuses this machine's hybrid cgroup layout; runc works.
	// Host loopback on, as for Docker rootless: the uplink figure reaches
	// the benchmark's server on 127.0.0.1 as 10.0.2.2.
	if err := e.writeUserFile(home, ".config/containers/containers.conf", "[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nnetwork_cmd_options = [\"allow_host_loopback=true\"]\n"); err != nil {
		eng.why = err.Error()
		return eng
	}
	if e.registry != "" { // containers/image wants TLS even on loopback unless told
		if err := e.writeUserFile(home, ".config/containers/registries.conf", fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", e.registry)); err != nil {
			eng.why = err.Error()
			return eng
		}
	}
	cmd := e.command(e.userEnv(home, run), "podman", "system", "service", "--time=0", "unix://"+eng.sock)
	logf, _ := os.Create(filepath.Join(e.base, "podman", "podman.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		eng.why = err.Error()
		return eng
	}
	eng.cmd = cmd
	if err := waitSocket(eng.sock, 60*time.Second, nil); err != nil {
		eng.why = "podman system service: " + err.Error()
	}
	return eng
}

func (e *env) cleanup() {
	for _, eng := range e.engines {
		// An interrupted group leaves its containers running, and
		// lodge's outlive their daemon: remove them while the API answers.
		if ids := strings.Fields(e.docker(eng, "ps", "-aq").stdout); len(ids) > 0 {
			e.docker(eng, append([]string{"rm", "-f"}, ids...)...)
		}
		switch {
		case eng.name == "lodge":
			runCmd(e.command(e.userEnv(eng.home, eng.run), "lodge", "daemon", "stop"))
		case eng.cmd != nil && eng.cmd.Process != nil:
			stopGroup(eng.name, eng.cmd)
		}
	}
	if eng := e.engineAny("podman"); eng != nil {
		// Podman's storage holds files owned by subuids: remove it inside
		// its user namespace.
		runCmd(e.command(e.userEnv(eng.home, eng.run), "podman", "unshare", "rm", "-rf", eng.home))
	}
	if eng := e.engineAny("docker"); eng != nil {
		runCmd(e.command(e.userEnv(eng.home, eng.run), "rootlesskit", "rm", "-rf", eng.home))
	}
	if eng := e.engineAny("lodge"); eng != nil {
		runCmd(e.command(e.userEnv(eng.home, eng.run), "podman", "unshare", "rm", "-rf", eng.home))
	}
	if err := os.RemoveAll(e.base); err != nil {
		fmt.Fprintln(os.Stderr, "bench: cleaning up:", err)
	}
}

// stopGroup ends an engine's process group: SIGTERM, then SIGKILL after
// 15s. A group already gone (ESRCH) is what it wants.
func stopGroup(name string, cmd *exec.Cmd) {
	pgid := -cmd.Process.Pid
	if err := syscall.Kill(pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		fmt.Fprintln(os.Stderr, "bench: stopping", name+":", err)
	}
	done := make(chan struct{})
	// Its end is what is waited for; how it ended is in its log.
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		if err := syscall.Kill(pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			fmt.Fprintln(os.Stderr, "bench: killing", name+":", err)
		}
	}
}

// writeUserFile writes a file under home, owned by the benchmark's user
// with the directories leading to it.
func (e *env) writeUserFile(home, rel, content string) error {
	p := filepath.Join(home, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	for d := filepath.Dir(p); d != home && d != "/"; d = filepath.Dir(d) {
		if err := os.Chown(d, e.uid, e.gid); err != nil {
			return err
		}
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Chown(p, e.uid, e.gid)
}

func (e *env) engineAny(name string) *engine {
	for _, eng := range e.engines {
		if eng.name == name {
			return eng
		}
	}
	return nil
}

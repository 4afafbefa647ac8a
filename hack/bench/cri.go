package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The cri group: a one-container pod's life through crictl (runp, create,
// start, stop, stopp, rmp) on lodge's CRI socket and on rootless
// containerd's CRI, the runtime a rootless kubelet uses today. Docker and
// Podman serve no CRI. containerd runs as nerdctl's containerd-rootless.sh
// runs it: in rootlesskit's namespaces with slirp4netns, /etc, /run and
// /var/lib copied up, runc, the overlayfs snapshotter and the CNI bridge
// plugin; cgroups disabled, because this machine's cgroup v1 controllers
// are not delegated (lodge gets no limits here either).

const criPods = 100

type criEndpoint struct {
	name, sock string
	home, run  string
}

func crictlPath() string {
	dir := os.Getenv("LODGE_CLIENTS_DIR")
	if dir == "" {
		dir = "/var/cache/lodge-clients"
	}
	if p := filepath.Join(dir, "bin", "crictl"); fileExists(p) {
		return p
	}
	return ""
}

func (e *env) crictl(ep criEndpoint, args ...string) out {
	all := append([]string{"--runtime-endpoint", "unix://" + ep.sock, "--image-endpoint", "unix://" + ep.sock, "--timeout", "300s"}, args...)
	return runCmd(e.command(e.userEnv(ep.home, ep.run), crictlPath(), all...))
}

// podLife is one pod from runp to rmp. Each pod has its own name, as a
// kubelet's do.
func (e *env) podLife(ep criEndpoint, dir string, n int) error {
	pod, ctr, err := e.podFiles(dir, n)
	if err != nil {
		return err
	}
	step := func(args ...string) (string, error) {
		o := e.crictl(ep, args...)
		if o.err != nil {
			return "", fmt.Errorf("crictl %s: %s", args[0], o)
		}
		return strings.TrimSpace(o.stdout), nil
	}
	p, err := step("runp", pod)
	if err != nil {
		return err
	}
	c, err := step("create", p, ctr, pod)
	if err == nil {
		_, err = step("start", c)
	}
	if err == nil {
		_, err = step("stop", c)
	}
	if err == nil {
		_, err = step("stopp", p)
	}
	if _, rerr := step("rmp", "-f", p); err == nil {
		err = rerr
	}
	return err
}

// podFiles writes the pod's and its container's configs, readable by the
// benchmark's user.
func (e *env) podFiles(dir string, n int) (pod, ctr string, err error) {
	name := fmt.Sprintf("bench-%d-%d", n, time.Now().UnixNano())
	podCfg := map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "bench", "uid": name, "attempt": 1},
		"log_directory": filepath.Join(dir, "logs", name),
		"linux":         map[string]any{},
	}
	ctrCfg := map[string]any{
		"metadata": map[string]any{"name": "c"},
		"image":    map[string]any{"image": "docker.io/library/busybox:latest"},
		"command":  []string{"sleep", "3600"},
		"log_path": "c.log",
		"linux":    map[string]any{},
	}
	pod = filepath.Join(dir, name+"-pod.json")
	ctr = filepath.Join(dir, name+"-ctr.json")
	for p, v := range map[string]any{pod: podCfg, ctr: ctrCfg} {
		b, _ := json.Marshal(v)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return "", "", err
		}
	}
	return pod, ctr, nil
}

func criBench(e *env, reps int) []result {
	seq := result{Figure: fmt.Sprintf("CRI: crictl runp+create+start+stop+stopp+rmp of a one-container pod (%d pods)", criPods), Unit: "ms"}
	par := result{Figure: "CRI: 50 pods through that life at once, wall", Unit: "ms"}
	note := func(s string) []result {
		seq.Notes = append(seq.Notes, s)
		return []result{seq, par}
	}
	if crictlPath() == "" {
		return note("crictl is not built: run hack/clients.sh")
	}
	lodge := e.engine("lodge")
	if lodge == nil {
		return note("lodge is not running")
	}
	dir := filepath.Join(e.base, "cri")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return note(err.Error())
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		return note(err.Error())
	}
	eps := []criEndpoint{{name: "lodge", sock: filepath.Join(lodge.run, "lodge", "cri.sock"), home: lodge.home, run: lodge.run}}
	// The first pod makes lodge's pause image, which containerd then uses
	// too: the same sandbox process for both.
	if err := e.podLife(eps[0], dir, -1); err != nil {
		return note("lodge: " + err.Error())
	}
	ctrd, stop, err := e.startContainerd(lodge)
	if err != nil {
		seq.Notes = append(seq.Notes, "rootless containerd not measured: "+err.Error())
	} else {
		defer stop()
		if err := e.podLife(ctrd, dir, -1); err != nil {
			seq.Notes = append(seq.Notes, "rootless containerd not measured: "+err.Error())
		} else {
			eps = append(eps, ctrd)
		}
	}
	seqS, parS := map[string]stats{}, map[string]stats{}
	for _, ep := range eps {
		s, err := timeIt(criPods, func() error { return e.podLife(ep, dir, 0) })
		if err != nil {
			seq.Notes = append(seq.Notes, ep.name+": "+err.Error())
			continue
		}
		seqS[ep.name] = s
		for i := 0; i < max(reps/2, 1); i++ {
			t0 := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, 50)
			for j := 0; j < 50; j++ {
				wg.Add(1)
				go func(j int) {
					defer wg.Done()
					if err := e.podLife(ep, dir, j); err != nil {
						errs <- err
					}
				}(j)
			}
			wg.Wait()
			close(errs)
			if err := <-errs; err != nil {
				par.Notes = append(par.Notes, ep.name+": "+err.Error())
				break
			}
			parS[ep.name] = append(parS[ep.name], ms(time.Since(t0)))
		}
	}
	setSeries(&seq, seqS)
	setSeries(&par, parS)
	seq.Notes = append(seq.Notes, "the anchor is rootless containerd's CRI (Debian's containerd in rootlesskit, as containerd-rootless.sh runs it), shown in the containerd column; Docker and Podman serve no CRI")
	return []result{finish(seq), finish(par)}
}

// startContainerd starts rootless containerd with its CRI, its sandbox
// image lodge's pause image and busybox imported, and returns its
// endpoint and how to stop it.
func (e *env) startContainerd(lodge *engine) (criEndpoint, func(), error) {
	home, run, err := e.dirFor("containerd")
	ep := criEndpoint{name: "containerd", home: home, run: run, sock: filepath.Join(run, "containerd", "containerd.sock")}
	if err != nil {
		return ep, nil, err
	}
	for _, bin := range []string{"containerd", "rootlesskit", "ctr", "/usr/lib/cni/bridge"} {
		if !fileExists(bin) && !onPath(bin) {
			return ep, nil, fmt.Errorf("%s is not installed (apt-get install containerd rootlesskit containernetworking-plugins)", bin)
		}
	}
	pause := strings.TrimSpace(e.docker(lodge, "images", "--format", "{{.Repository}}:{{.Tag}}", "lodge/pause").stdout)
	if pause == "" {
		return ep, nil, fmt.Errorf("lodge made no pause image")
	}
	pauseTar := filepath.Join(home, "pause.tar") // the user's docker CLI writes it
	if o := e.docker(lodge, "save", "-o", pauseTar, pause); o.err != nil {
		return ep, nil, fmt.Errorf("saving lodge's pause image: %s", o)
	}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  disable_cgroup = true
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
`, filepath.Join(home, "root"), filepath.Join(run, "containerd", "state"), ep.sock, "docker.io/"+pause)
	cni := `{"cniVersion":"1.0.0","name":"bench","plugins":[{"type":"bridge","bridge":"cni0","isGateway":true,"ipMasq":false,` +
		`"ipam":{"type":"host-local","ranges":[[{"subnet":"10.89.0.0/16"}]],"routes":[{"dst":"0.0.0.0/0"}]}},{"type":"loopback"}]}`
	// Inside rootlesskit's namespaces: containerd's paths in /etc, /run and
	// /var/lib are writable copies; CNI's leases go to the user's tree.
	inner := fmt.Sprintf(`set -e
rm -rf /run/containerd /var/lib/containerd /var/lib/cni /etc/cni
mkdir -p /var/lib/cni /etc/cni/net.d %[1]s/cni-lib
cp %[1]s/cni.conflist /etc/cni/net.d/10-bench.conflist
mount --bind %[1]s/cni-lib /var/lib/cni
exec containerd -c %[1]s/config.toml
`, home)
	for name, content := range map[string]string{"config.toml": config, "cni.conflist": cni, "inner.sh": inner} {
		if err := e.writeUserFile(home, name, content); err != nil {
			return ep, nil, err
		}
	}
	cmd := e.command(e.userEnv(home, run), "rootlesskit", "--state-dir="+filepath.Join(run, "rootlesskit"),
		"--net=slirp4netns", "--mtu=65520", "--disable-host-loopback", "--copy-up=/etc", "--copy-up=/run",
		"--copy-up=/var/lib", "--propagation=rslave", "sh", filepath.Join(home, "inner.sh"))
	logf, _ := os.Create(filepath.Join(e.base, "containerd", "containerd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return ep, nil, err
	}
	stop := func() {
		stopGroup("containerd", cmd)
		// Its snapshots hold files of the user namespace's other ids.
		runCmd(e.command(e.userEnv(home, run), "rootlesskit", "rm", "-rf", filepath.Join(home, "root")))
	}
	if err := waitSocket(ep.sock, 60*time.Second, func() bool { return cmd.ProcessState == nil }); err != nil {
		stop()
		return ep, nil, fmt.Errorf("%v (see %s)", err, logf.Name())
	}
	for _, tar := range []string{e.archive, pauseTar} {
		o := runCmd(e.command(e.userEnv(home, run), "ctr", "--address", ep.sock, "-n", "k8s.io", "images", "import", tar))
		if o.err != nil {
			stop()
			return ep, nil, fmt.Errorf("ctr images import: %s", o)
		}
	}
	return ep, stop, nil
}

func onPath(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

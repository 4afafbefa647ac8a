// Command lodged is lodge's per-user daemon. One binary runs as each of
// its stages (the foreground process, rootlesskit's parent and child, the
// keeper, the pin and the API daemon), as each container's monitor and
// init, and as storage's chrooted unpacker; ARCHITECTURE.md draws the
// tree. This file only dispatches and wires packages together.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	cstorage "go.podman.io/storage"
	"go.podman.io/storage/pkg/reexec"

	"github.com/lodge-containers/lodge/api"
	"github.com/lodge-containers/lodge/cgroupv2"
	"github.com/lodge-containers/lodge/cri"
	"github.com/lodge-containers/lodge/daemon"
	"github.com/lodge-containers/lodge/netns"
	"github.com/lodge-containers/lodge/paths"
	"github.com/lodge-containers/lodge/proc"
	"github.com/lodge-containers/lodge/runtime"
	"github.com/lodge-containers/lodge/userns"
	"github.com/lodge-containers/lodge/version"
)

// Facts travel from the parent to the daemon in these variables.
const (
	envNetDriver   = userns.EnvNetDriver
	envNetSkipped  = userns.EnvNetSkipped
	envIDSource    = userns.EnvIDSource
	envSingleID    = userns.EnvSingleID
	envForceSingle = userns.EnvForceSingle
	// envDataRoot and envDataRootWhy carry a data root chosen in place of
	// the default, when that is on a network or FUSE filesystem.
	envDataRoot    = "_LODGE_DATA_ROOT"
	envDataRootWhy = "_LODGE_DATA_ROOT_WHY"
)

// cgroupRoot is where the machine mounts cgroupfs.
const cgroupRoot = "/sys/fs/cgroup"

type options struct {
	host          string
	dataRoot      string
	networkDriver string
	storageDriver string
	debug         bool
	detach        bool
	cgroupLimits  string
	cgroupManager string
	singleIDMap   bool
	networkData   bool
	idleStop      time.Duration
	cri           bool
	criPodSubnet  string
	criStreamAddr string
	// noNewPrivs is --no-new-privileges, noNewPrivsSet whether it was
	// given (else daemon.json's, else on).
	noNewPrivs    bool
	noNewPrivsSet bool

	insecureRegistries []string
	registryMirrors    []string
}

// The main goroutine keeps the main thread to itself (an init function
// runs there): the image service unpacks layers on threads it chroots
// (image.unpackConfined), and the main thread's root is the one
// /proc/PID/root shows for the whole process.
func init() { goruntime.LockOSThread() }

func main() {
	// libcontainer re-executes lodged as its init, and the daemon as a
	// container's monitor: both before anything else runs.
	if runtime.IsInit() {
		runtime.Init()
	}
	if runtime.IsMonitor() {
		if err := runtime.MonitorMain(); err != nil {
			fmt.Fprintln(os.Stderr, "lodged monitor:", err)
			os.Exit(1)
		}
		return
	}
	// go.podman.io/storage unpacks layers in a re-executed, chrooted
	// lodged, so a hostile tar cannot write outside its layer.
	if reexec.Init() {
		return
	}
	if os.Getenv("_LODGE_DEBUG") != "" {
		logrus.SetLevel(logrus.DebugLevel)
	}
	switch userns.CurrentStage() {
	case userns.StageChild, userns.StagePin, userns.StageKeeper, userns.StageKeeperParent:
		// lodge-keeper's stages, from a keeper that asked for lodged.
		fmt.Fprintln(os.Stderr, "lodged: this stage is lodge-keeper's; reinstall lodge (lodge-keeper beside lodged or in libexec/lodge)")
		os.Exit(1)
	}
	env := paths.FromOS()
	var o options
	cmd := &cobra.Command{
		Use:           "lodged",
		Short:         "lodge's rootless per-user container daemon",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(o.debug)
			o.noNewPrivsSet = cmd.Flags().Changed("no-new-privileges")
			if userns.CurrentStage() == userns.StageDaemon {
				return runDaemon(log, env, o)
			}
			return runForeground(env, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.host, "host", "H", "", "socket to serve the API on (default $XDG_RUNTIME_DIR/lodge/lodge.sock)")
	f.StringVar(&o.dataRoot, "data-root", "", "where images, containers and volumes live (default $XDG_DATA_HOME/lodge)")
	f.StringVar(&o.networkDriver, "network-driver", netns.Auto, "uplink for containers: auto, pasta, slirp4netns, gvisor-tap-vsock or none")
	f.StringVar(&o.storageDriver, "storage-driver", "", "overlay, fuse-overlayfs or vfs (default: the first that works here)")
	f.StringSliceVar(&o.insecureRegistries, "insecure-registry", nil, "registry (host:port) to speak plain HTTP to; loopback ones need no flag")
	f.StringSliceVar(&o.registryMirrors, "registry-mirror", nil, "mirror to try first for docker.io images")
	f.BoolVarP(&o.debug, "debug", "D", false, "log debug messages")
	f.StringVar(&o.cgroupLimits, "cgroup-limits", "refuse", "a resource limit lodged cannot enforce (its cgroup controller is not delegated): refuse the container, or warn and run it without the limit")
	f.StringVar(&o.cgroupManager, "cgroup-manager", "", "ask the user's systemd for a delegated cgroup scope: auto (when lodged's cgroup is not delegated and a user bus exists), systemd (always, failing if it cannot) or cgroupfs (never); default daemon.json's cgroup-manager, else auto")
	f.BoolVar(&o.singleIDMap, "single-id-map", false, "map only your own id into the user namespace, even with a subuid range (as when newuidmap is refused by policy); daemon.json: single-id-map")
	f.BoolVar(&o.networkData, "allow-network-data-root", false, "keep --data-root even on NFS, Lustre, GPFS, BeeGFS, SMB or FUSE (slow vfs storage, and chown to subordinate ids may be refused)")
	f.DurationVar(&o.idleStop, "idle-stop", 0, "stop lodged after it has run no container and served no request for this long (0: never); daemon.json: idle-stop, e.g. \"30m\"")
	f.BoolVar(&o.cri, "cri", true, "serve the Kubernetes Container Runtime Interface on $XDG_RUNTIME_DIR/lodge/cri.sock")
	f.StringVar(&o.criPodSubnet, "cri-pod-subnet", cri.DefaultPodSubnet, "subnet of the k8s-pods network CRI pods get their addresses on (when lodged makes it)")
	f.StringVar(&o.criStreamAddr, "cri-stream-address", cri.DefaultStreamAddress, "host:port of the CRI's streaming server (exec, attach, port-forward; port 0: one the kernel picks); it listens from the first streaming call and answers only local connections of lodged's user, each with a one-time token")
	f.BoolVar(&o.noNewPrivs, "no-new-privileges", true, "containers run with no_new_privs (setuid bits and file capabilities grant nothing) unless they ask --security-opt no-new-privileges=false; daemon.json: no-new-privileges")
	f.BoolVar(&o.detach, "detach", false, "return once the API answers, leaving the daemon in the background (lodge daemon start uses it)")
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "lodged:", err)
		os.Exit(1)
	}
}

func newLogger(debug bool) *slog.Logger {
	lvl := slog.LevelInfo
	if debug {
		lvl = slog.LevelDebug
		logrus.SetLevel(logrus.DebugLevel) // rootlesskit logs through logrus
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

func (o options) socket(env paths.Env) string {
	if o.host != "" {
		return strings.TrimPrefix(o.host, "unix://")
	}
	return env.Socket()
}

func (o options) dataRootOr(env paths.Env) string {
	if o.dataRoot != "" {
		return o.dataRoot
	}
	return env.DataRoot()
}

// runForeground is the process the user started. It has the keeper (which
// holds the namespaces, starting it if needed) run the API daemon with this
// process's stdio, forwards signals to it, and exits with its code. Killing
// it does not kill the daemon; killing the daemon ends it. With --detach it
// returns as soon as the API answers instead, so that no process stays
// behind only to wait.
func runForeground(env paths.Env, o options) error {
	// Both taken first, so that no stage started below inherits them.
	notify := takeNotifySocket()
	activated, err := activatedListener()
	if err != nil {
		return err
	}
	sock := o.socket(env)
	if activated != nil {
		sock = socketPath(activated)
	}
	runDir := env.RuntimeDir()
	if err := paths.EnsurePrivateDir(runDir, env.UID); err != nil {
		return fmt.Errorf("runtime dir: %w; choose another with XDG_RUNTIME_DIR", err)
	}
	// Every stage after this one runs as uid 0 in the user namespace,
	// where /tmp/lodge-$UID would name root's directory: they are told
	// the directory checked here instead of computing their own.
	if err := os.Setenv(paths.EnvRuntimeDir, runDir); err != nil {
		return err
	}
	if o.cgroupLimits != "refuse" && o.cgroupLimits != "warn" {
		return fmt.Errorf("--cgroup-limits: %q is neither refuse nor warn", o.cgroupLimits)
	}
	if err := paths.CheckOwnedPath(env.ConfigFile(), env.UID, os.Getgid()); err != nil {
		return fmt.Errorf("config file: %w; fix it or point XDG_CONFIG_HOME elsewhere", err)
	}
	fc, err := readConfig(env.ConfigFile())
	if err != nil {
		return err
	}
	// Checked here, with the user's real uid: inside the namespace the
	// owner of a file is read through the id map.
	dataRoot, err := chooseDataRoot(env, o, fc)
	if err != nil {
		return err
	}
	if err := paths.CheckOwnedPath(dataRoot, env.UID, os.Getgid()); err != nil {
		return fmt.Errorf("data root: %w; choose one of your own with --data-root or data-root in %s", err, env.ConfigFile())
	}
	cgManager, err := cgroupManager(o, fc)
	if err != nil {
		return err
	}
	// Before any other process of lodged's starts, so they all begin in
	// the leaf and the delegated cgroup above it stays free of processes.
	if err := cgroupv2.EnterLeaf(cgroupRoot, "/proc/self/cgroup"); err != nil {
		fmt.Fprintln(os.Stderr, "lodged: cannot move into a leaf of its cgroup, containers get no cgroups of their own:", err)
	}
	// Fail early, naming the running daemon. The lock is handed over at
	// once: the daemon takes it for itself, and a racing second start
	// loses there with the same message.
	l, err := paths.LockDaemon(runDir)
	if err != nil {
		return err
	}
	l.Release()
	d, err := userns.StartDaemonWith(runDir, os.Args[1:], os.Environ(), activated)
	keeperLog := filepath.Join(runDir, "keeper.log")
	if errors.Is(err, userns.ErrNoKeeper) {
		// Containers still running in the namespaces of a lodged whose
		// keeper and daemon both died: come back into those.
		if pid := userns.Pin(runDir); pid > 0 {
			env, rerr := rejoinEnv(runDir, pid, o)
			if rerr == nil {
				rerr = userns.RejoinKeeper(runDir, pid, env, keeperLog, 2*time.Minute)
			}
			if rerr == nil {
				d, err = userns.StartDaemonWith(runDir, os.Args[1:], os.Environ(), activated)
			} else {
				fmt.Fprintln(os.Stderr, "lodged: warning: cannot come back into the namespaces of the running containers (held by pid", pid, "), making new ones; those containers lose exec and ports:", rerr)
			}
		}
	}
	if errors.Is(err, userns.ErrNoKeeper) {
		if err := askSystemdScope(cgManager); err != nil {
			return err
		}
		keeperEnv := []string{userns.EnvKeeperParent, userns.EnvNetAsked + "=" + o.networkDriver}
		if o.debug {
			keeperEnv = append(keeperEnv, userns.EnvKeeperDebug+"=1")
		}
		if o.singleIDMap || fc.SingleIDMap {
			keeperEnv = append(keeperEnv, envForceSingle+"=asked for (--single-id-map or single-id-map in daemon.json)")
		}
		err = userns.StartKeeper(runDir, keeperEnv, keeperLog, 2*time.Minute)
		if err != nil && idMapRefused(err) && !o.singleIDMap && !fc.SingleIDMap {
			// newuidmap is there but the system refuses it (no setuid bit
			// or file capabilities, a policy): what a missing one gets.
			why := "newuidmap/newgidmap failed (" + firstLine(err) + "); single-id map"
			fmt.Fprintln(os.Stderr, "lodged: warning:", why)
			err = userns.StartKeeper(runDir, append(keeperEnv, envForceSingle+"="+why), keeperLog, 2*time.Minute)
		}
		if err != nil {
			return err
		}
		d, err = userns.StartDaemonWith(runDir, os.Args[1:], os.Environ(), activated)
	}
	if err != nil {
		return err
	}
	if activated != nil {
		activated.Close() // the daemon has its own copy
	}
	if o.detach {
		os.Exit(waitAnswering(d, sock))
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	go func() {
		for s := range sigs {
			if s == syscall.SIGTERM || s == syscall.SIGINT {
				if err := notify.send("STOPPING=1"); err != nil {
					fmt.Fprintln(os.Stderr, "lodged:", err)
				}
			}
			// A daemon already gone (ESRCH) is ending anyway: d.Wait returns.
			if err := syscall.Kill(d.Pid, s.(syscall.Signal)); err != nil && !errors.Is(err, syscall.ESRCH) {
				fmt.Fprintln(os.Stderr, "lodged: passing", s, "to the daemon:", err)
			}
		}
	}()
	exited := make(chan struct{})
	go func() {
		// Once the API answers: systemd (Type=notify) hears that lodged
		// is ready, and this process, which only waits from then on,
		// gives back what it no longer needs.
		if !waitAnswers(sock, exited) {
			return
		}
		if err := notify.send("READY=1"); err != nil {
			fmt.Fprintln(os.Stderr, "lodged:", err)
		}
		becomeWaiter(d, notify)
	}()
	code := d.Wait()
	close(exited)
	os.Exit(code)
	return nil
}

// waitAnswers polls until the API at sock answers (true) or the daemon
// exits (false).
func waitAnswers(sock string, exited <-chan struct{}) bool {
	for !answers(sock) {
		select {
		case <-exited:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}

// becomeWaiter turns this process, which only waits from now on, into
// lodge-wait (C, ~0.3 MiB): the same pid, waiting on the same keeper
// connection and passing the same signals. Without lodge-wait it stays,
// shrunk.
func becomeWaiter(d *userns.Daemon, notify notifier) {
	exe, err := paths.Helper(userns.WaitBinary)
	if err == nil {
		err = d.ExecWaiter(exe, notify.addr)
	}
	fmt.Fprintln(os.Stderr, "lodged: the foreground process stays lodged (more memory):", err)
	shrinkWaiter()
}

// shrinkWaiter gives back what the foreground process no longer needs once
// the daemon answers: from then on it only waits and passes signals on (a
// systemd unit or a terminal keeps it for the daemon's whole life). It ran
// the init of every package lodged links, and so held ~20 MiB of the
// binary mapped for nothing, more than the daemon itself at rest.
func shrinkWaiter() {
	debug.FreeOSMemory()
	if _, err := proc.ReleaseCode(); err != nil {
		fmt.Fprintln(os.Stderr, "lodged: releasing the foreground process's code pages:", err)
	}
}

// chooseDataRoot is --data-root, else daemon.json's, else the default. A
// default on a network or FUSE filesystem (an NFS home on a cluster) is
// replaced by a private directory on local disk, $TMPDIR or /var/tmp,
// and the daemon is told why; one the user named there is refused unless
// --allow-network-data-root.
func chooseDataRoot(env paths.Env, o options, fc fileConfig) (string, error) {
	named := o.dataRoot
	if named == "" {
		named = fc.DataRoot
	}
	if named != "" {
		if fs := paths.NetworkFS(named); fs != "" && !o.networkData {
			return "", fmt.Errorf("data root %s is on %s, where lodge's storage cannot keep files owned by your subordinate ids or use overlay: choose a local directory (--data-root, or data-root in %s), or keep it with --allow-network-data-root", named, fs, env.ConfigFile())
		}
		return named, nil
	}
	def := env.DataRoot()
	fs := paths.NetworkFS(def)
	if fs == "" {
		return def, nil
	}
	tmp := os.Getenv("TMPDIR")
	if tmp == "" || paths.NetworkFS(tmp) != "" {
		tmp = "/var/tmp"
	}
	local := filepath.Join(tmp, "lodge-"+strconv.Itoa(env.UID))
	if err := paths.EnsurePrivateDir(local, env.UID); err != nil {
		return "", fmt.Errorf("the default data root %s is on %s and the local one: %w; choose one with --data-root", def, fs, err)
	}
	why := fmt.Sprintf("the default data root %s is on %s, where lodge's storage does not work well; using %s on local disk instead (set data-root in %s to choose)", def, fs, local, env.ConfigFile())
	fmt.Fprintln(os.Stderr, "lodged:", why)
	if err := os.Setenv(envDataRoot, local); err != nil {
		return "", err
	}
	if err := os.Setenv(envDataRootWhy, why); err != nil {
		return "", err
	}
	return local, nil
}

// waitAnswering waits until the daemon d answers on sock (0) or exits
// (its code, 1 at least).
func waitAnswering(d *userns.Daemon, sock string) int {
	exited := make(chan int, 1)
	go func() { exited <- d.Wait() }()
	for {
		select {
		case code := <-exited:
			return max(code, 1)
		case <-time.After(20 * time.Millisecond):
		}
		if answers(sock) {
			return 0
		}
	}
}

// idMapRefused tells whether the keeper failed because the id-mapping
// helpers were refused.
func idMapRefused(err error) bool {
	m := err.Error()
	return strings.Contains(m, "newuidmap") || strings.Contains(m, "newgidmap") || strings.Contains(m, "uid_map") || strings.Contains(m, "gid_map")
}

func firstLine(err error) string {
	line, _, _ := strings.Cut(err.Error(), "\n")
	return line
}

// runDaemon is the daemon inside the namespace: it serves the API.
func runDaemon(log *slog.Logger, env paths.Env, o options) error {
	lock, err := paths.LockDaemon(env.RuntimeDir())
	if err != nil {
		return err
	}
	defer lock.Release()
	fc, err := readConfig(env.ConfigFile())
	if err != nil {
		return err
	}
	if o.dataRoot == "" {
		o.dataRoot = fc.DataRoot
	}
	if o.dataRoot == "" {
		o.dataRoot = os.Getenv(envDataRoot) // the host side's local choice
	}
	dataRoot := o.dataRootOr(env)
	if why := os.Getenv(envDataRootWhy); why != "" {
		log.Warn("data root moved to local disk", "why", why)
	}
	if err := os.MkdirAll(dataRoot, 0o700); err != nil {
		return fmt.Errorf("data root: %w", err)
	}
	var skipped []string
	if s := os.Getenv(envNetSkipped); s != "" {
		skipped = strings.Split(s, "\n")
	}
	sock := o.socket(env)
	var inherited net.Listener
	if fd := os.Getenv(userns.EnvListenFD); fd != "" {
		// systemd's socket, handed down by the keeper: served as it is,
		// and left in place when lodged stops, for the next activation.
		os.Unsetenv(userns.EnvListenFD)
		if inherited, err = inheritedListener(fd); err != nil {
			return err
		}
		sock = inherited.Addr().String()
	}
	if os.Getenv(envSingleID) == "true" {
		// The daemon's stderr is lodged's own output (and lodged.log):
		// the user sees why other uids do not exist in containers.
		log.Warn("running with a single-id map: only your own uid exists in containers", "why", os.Getenv(envIDSource))
	}
	runtimes := findRuntimes(fc, log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	svc, err := startServices(ctx, log, dataRoot, filepath.Join(env.RuntimeDir(), "state"), o, fc, os.Getenv(envSingleID) == "true", runtimes)
	if err != nil {
		return err
	}
	defer func() {
		// Running containers keep their layers mounted (they outlive
		// lodged), which Shutdown reports and is as it should be.
		if _, err := svc.store.Shutdown(false); err != nil && !errors.Is(err, cstorage.ErrLayerUsedByContainer) {
			log.Warn("shutting the store down", "err", err)
		}
	}()
	// The name servers end with the daemon (after the containers' watchers,
	// which may still detach endpoints).
	if svc.networks != nil {
		defer func() {
			if err := svc.networks.Close(); err != nil {
				log.Warn("closing the network service", "err", err)
			}
		}()
	}
	// Its exit watchers and probes end before the store shuts down
	// (deferred last, run first).
	defer func() {
		if err := svc.containers.Close(); err != nil {
			log.Warn("closing the container service", "err", err)
		}
	}()
	sys, err := daemon.NewSystem(daemon.Facts{
		DataRoot:        dataRoot,
		DataRootNote:    os.Getenv(envDataRootWhy),
		Socket:          sock,
		NetworkDriver:   os.Getenv(envNetDriver),
		PortDriver:      "builtin",
		NetworkSkipped:  skipped,
		IDMapSource:     os.Getenv(envIDSource),
		SingleID:        os.Getenv(envSingleID) == "true",
		CgroupRoot:      cgroupRoot,
		CgroupScope:     cgroupScope(),
		Runtimes:        runtimes,
		DefaultRuntime:  fc.DefaultRuntime,
		NoNewPrivileges: noNewPrivileges(o, fc),
	}, daemon.SystemServices{Containers: svc.containers, Images: svc.images, Storage: svc.storageInfo})
	if err != nil {
		return err
	}
	var l net.Listener
	if inherited != nil {
		l = api.OwnerOnly(inherited, os.Getuid(), log)
	} else if l, err = api.ListenOwnerSocket(sock, os.Getuid(), log); err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	capi := daemon.NewContainerAPI(svc.containers)
	backends := api.Backends{
		System: sys, Containers: capi, Exec: daemon.ExecAPI(svc.containers), Images: svc.images, Networks: daemon.NetworkAPI{NetworkStore: svc.networks, Containers: svc.containers},
		Volumes: svc.volumes, Files: capi, Commit: svc.images, DiskUsage: svc.images,
		Events: svc.events, Build: svc.builds,
	}
	if bk := buildKit(dataRoot, env.RuntimeDir(), sock, runtimes["runc"], log); bk != nil {
		defer bk.Close() // after the server's shutdown: deferred first, run last
		backends.BuildKit = bk
	}
	srv := &http.Server{Handler: api.NewServer(backends, log), ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 5 * time.Minute}
	idleAfter, err := idleStopAfter(o, fc)
	if err != nil {
		return err
	}
	trim := newMemTrim(3*time.Second, time.Minute, 30*time.Second, log)
	trim.codeKB = func() int {
		kb, _ := strconv.Atoi(proc.StatusField(os.Getpid(), "RssFile"))
		return kb
	}
	srv.ConnState = trim.connState
	go trim.watch(ctx)
	if idleAfter > 0 {
		w := newIdleStop(idleAfter, func() int {
			_, running, paused, _ := svc.containers.Counts()
			return running + paused
		})
		srv.ConnState = func(c net.Conn, s http.ConnState) { trim.connState(c, s); w.connState(c, s) }
		go w.watch(ctx, log, stop)
	}
	go capi.StartOnBoot(ctx)
	go superviseKeeper(ctx, log, env.RuntimeDir())
	if userns.StateDir() != "" {
		go republishOnNewDriver(ctx, log, svc.networks.Republish)
	}
	if o.cri {
		criDone, err := serveCRI(ctx, log, env, svc, capi, criOptions{podSubnet: o.criPodSubnet, streamAddress: o.criStreamAddr})
		if err != nil {
			return err
		}
		defer criDone() // after the API's shutdown: deferred first, run last
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.Info("lodged ready", "socket", sock, "version", version.Version, "pid", os.Getpid())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

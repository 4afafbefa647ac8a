package userns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/rootless-containers/rootlesskit/v3/pkg/api/router"
	"github.com/rootless-containers/rootlesskit/v3/pkg/child"
	"github.com/rootless-containers/rootlesskit/v3/pkg/messages"
	"github.com/rootless-containers/rootlesskit/v3/pkg/network"
	"github.com/rootless-containers/rootlesskit/v3/pkg/parent"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
)

// Environment keys that carry the set-up from the host-side parent through
// rootlesskit's child to the daemon inside the namespace.
const (
	envPipeFD     = "_LODGE_ROOTLESSKIT_PIPEFD"
	envActivation = "_LODGE_ROOTLESSKIT_ACTIVATION"
	envHelper     = "_LODGE_ROOTLESSKIT_HELPER"
	envStateDir   = "_LODGE_ROOTLESSKIT_STATEDIR"
	envStage      = "_LODGE_STAGE"
	// EnvParentPID names the host-side lodged process for the daemon.
	EnvParentPID = "_LODGE_PARENT_PID"
)

// Stage tells which of lodged's processes this is.
type Stage int

// The stages: the foreground process the user started; the keeper's
// host-side parent (rootlesskit's parent: id maps, uplink); rootlesskit's
// child (finishes the namespace); the keeper inside the namespaces; and the
// API daemon the keeper starts.
const (
	StageForeground Stage = iota
	StageKeeperParent
	StageChild
	StageKeeper
	StageDaemon
	// StagePin holds the namespaces while containers run, should the
	// keeper die as well as the daemon (see RunPin).
	StagePin
)

// EnvKeeperParent marks the process StartKeeper starts.
const EnvKeeperParent = envStage + "=keeper-parent"

// CurrentStage reads the stage from the environment. The pipe variable
// wins: rootlesskit's child re-executes itself (to gain its capabilities
// once the maps are written) with the keeper marker already set, and unsets
// the pipe variable only just before it starts the keeper.
func CurrentStage() Stage {
	if os.Getenv(envPipeFD) != "" {
		return StageChild
	}
	switch os.Getenv(envStage) {
	case "daemon":
		return StageDaemon
	case "keeper":
		return StageKeeper
	case "pin":
		return StagePin
	case "keeper-parent":
		return StageKeeperParent
	}
	return StageForeground
}

// EnvStateDir names rootlesskit's state directory for the stages inside
// the namespace.
const EnvStateDir = envStateDir

// StateDir is rootlesskit's state directory, as seen by the daemon stage.
func StateDir() string { return os.Getenv(envStateDir) }

// ParentConfig says how to build the namespace.
type ParentConfig struct {
	// StateDir is rootlesskit's state directory, made by PrepareStateDir.
	// RunParent removes it when the namespace ends: give it a directory of
	// its own.
	StateDir string
	// Network is the uplink's parent-side driver; nil for no uplink.
	Network network.ParentDriver
	// Port forwards published ports; nil for none.
	Port port.ParentDriver
	// SingleID maps only the user's own uid and gid (to 0), without
	// newuidmap: the fallback when there are no subordinate ids.
	SingleID bool
}

// PrepareStateDir empties (or creates) rootlesskit's state directory. Call
// it before building drivers that keep files there, and only while holding
// the daemon lock: what is left there belongs to a dead lodged.
func PrepareStateDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o700)
}

// RunParent re-executes the current binary (with the same arguments) in a
// new user and mount namespace with a detached network namespace, and
// blocks until it exits. The child stage must call RunChild. Signals
// SIGINT and SIGTERM are forwarded. The returned error says why the
// namespace could not be set up or how the child ended.
func RunParent(cfg ParentConfig) error {
	if err := os.Setenv(EnvParentPID, strconv.Itoa(os.Getpid())); err != nil {
		return err
	}
	if cfg.SingleID {
		// What is left, the next start's PrepareStateDir removes.
		defer func() { _ = os.RemoveAll(cfg.StateDir) }()
		return runSingleID(cfg)
	}
	return parent.Parent(parent.Opt{
		PipeFDEnvKey:             envPipeFD,
		ChildUseActivationEnvKey: envActivation,
		StateDir:                 cfg.StateDir,
		StateDirEnvKey:           envStateDir,
		NetworkDriver:            cfg.Network,
		PortDriver:               cfg.Port,
		DetachNetNS:              true,
		Propagation:              "rslave",
		SubidSource:              parent.SubidSourceAuto,
	})
}

// RunChild is the child stage: it completes the namespace set-up with the
// drivers' namespace halves and runs the keeper (this binary again, same
// arguments) until it exits.
func RunChild(net network.ChildDriver, p port.ChildDriver) error {
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	if err := os.Setenv(envStage, "keeper"); err != nil {
		return err
	}
	return child.Child(child.Opt{
		PipeFDEnvKey:              envPipeFD,
		RunActivationHelperEnvKey: envHelper,
		ChildUseActivationEnvKey:  envActivation,
		StateDirEnvKey:            envStateDir,
		TargetCmd:                 append([]string{exe}, os.Args[1:]...),
		NetworkDriver:             net,
		PortDriver:                p,
		DetachNetNS:               true,
		Propagation:               "rslave",
	})
}

// runSingleID plays rootlesskit's parent side of the set-up protocol for a
// namespace whose maps the kernel lets an unprivileged user write itself:
// its own uid and gid as 0, setgroups denied. rootlesskit's parent always
// calls newuidmap with subordinate ranges, so it cannot do this; its child
// half works unchanged, and because the child starts with its maps written
// it already holds its capabilities and skips the hello exchange.
func runSingleID(cfg ParentConfig) error {
	toChildR, toChildW, err := os.Pipe()
	if err != nil {
		return err
	}
	fromChildR, fromChildW, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{toChildR, fromChildW} // fds 3 and 4
	cmd.Env = append(os.Environ(),
		envPipeFD+"=3,4",
		envActivation+"=false",
		envStateDir+"="+cfg.StateDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Pdeathsig:                  syscall.SIGKILL,
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the namespace child: %w", err)
	}
	toChildR.Close()
	fromChildW.Close()
	stop := forwardSignals(cmd.Process)
	defer stop()
	fail := func(err error) error {
		cmd.Process.Kill()
		_ = cmd.Wait() // only to reap it: killed, its status says nothing
		return err
	}
	if _, err := messages.WaitFor(fromChildR, messages.Name(messages.ChildInitUserNSCompleted{})); err != nil {
		return fail(fmt.Errorf("namespace child: %w", err))
	}

	netDone := &messages.ParentInitNetworkDriverCompleted{}
	if cfg.Network != nil {
		netnsPath := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "root", filepath.Clean(cfg.StateDir), "netns")
		msg, cleanup, err := cfg.Network.ConfigureNetwork(cmd.Process.Pid, cfg.StateDir, netnsPath)
		if cleanup != nil {
			defer func() {
				if err := cleanup(); err != nil {
					fmt.Fprintln(os.Stderr, "lodged: stopping the uplink:", err)
				}
			}()
		}
		if err != nil {
			return fail(fmt.Errorf("setting up the network: %w", err))
		}
		netDone = msg
	}
	if err := messages.Send(toChildW, &messages.Message{U: messages.U{ParentInitNetworkDriverCompleted: netDone}}); err != nil {
		return fail(err)
	}
	portDone := &messages.ParentInitPortDriverCompleted{}
	portQuit := make(chan struct{})
	portErr := make(chan error, 1)
	portReady := make(chan struct{}, 1) // the driver sends once, when the child half answers
	if cfg.Port != nil {
		portDone.PortDriverOpaque = cfg.Port.OpaqueForChild()
		cctx := &port.ChildContext{IP: net.ParseIP(netDone.IP).To4(), GatewayIP: net.ParseIP(netDone.Gateway).To4()}
		if v, ok := netDone.Network.(port.VirtualNetworkProvider); ok {
			cctx.Network = v
		}
		go func() { portErr <- cfg.Port.RunParentDriver(portReady, portQuit, cctx) }()
		defer func() {
			close(portQuit)
			if err := <-portErr; err != nil {
				fmt.Fprintln(os.Stderr, "lodged: port driver:", err)
			}
		}()
	}
	srv, err := ServeAPI(cfg.StateDir, cfg.Network, cfg.Port, cmd.Process.Pid)
	if err != nil {
		return fail(err)
	}
	defer srv.Close()
	if err := os.WriteFile(filepath.Join(cfg.StateDir, parent.StateFileChildPID), []byte(strconv.Itoa(cmd.Process.Pid)), 0o444); err != nil {
		return fail(err)
	}
	if err := messages.Send(toChildW, &messages.Message{U: messages.U{ParentInitPortDriverCompleted: portDone}}); err != nil {
		return fail(err)
	}
	toChildW.Close()
	if cfg.Port != nil {
		select {
		case <-portReady:
		case err := <-portErr:
			portErr <- nil // for the deferred shutdown: err is returned
			return fail(fmt.Errorf("port driver: %w", err))
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("namespace child exited: %w", err)
	}
	return nil
}

// ServeAPI serves rootlesskit's own REST API (ports, info) on api.sock in
// stateDir, as its parent does, so the daemon manages published ports the
// same way in every mode: single-id, and a keeper that took over from a
// dead host side. Either driver may be nil. Close the server to stop.
func ServeAPI(stateDir string, nd network.ParentDriver, pd port.ParentDriver, childPID int) (*http.Server, error) {
	mux := http.NewServeMux()
	b := &router.Backend{StateDir: stateDir, ChildPID: childPID}
	if nd != nil {
		b.NetworkDriver = nd
	}
	if pd != nil {
		b.PortDriver = pd
	}
	router.AddRoutes(mux, b)
	sock := filepath.Join(stateDir, parent.StateFileAPISock)
	// A dead parent's.
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "lodged: rootlesskit API:", err)
		}
	}()
	return srv, nil
}

func forwardSignals(p *os.Process) (stop func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			select {
			case s := <-ch:
				if err := p.Signal(s); err != nil && !errors.Is(err, os.ErrProcessDone) {
					fmt.Fprintln(os.Stderr, "lodged: forwarding", s, "to the namespace child:", err)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { signal.Stop(ch); cancel() }
}

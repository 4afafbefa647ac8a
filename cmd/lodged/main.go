// Command lodged is lodge's per-user daemon. It runs as three processes:
// the host-side parent (locks, id maps, network uplink), rootlesskit's
// child (finishes the namespace) and the daemon inside the namespace that
// serves the Docker Engine API. This file only wires packages together.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/lodge-containers/lodge/api"
	"github.com/lodge-containers/lodge/daemon"
	"github.com/lodge-containers/lodge/netns"
	"github.com/lodge-containers/lodge/paths"
	"github.com/lodge-containers/lodge/userns"
	"github.com/lodge-containers/lodge/version"
)

// Facts travel from the parent to the daemon in these variables.
const (
	envNetDriver  = "_LODGE_NET_DRIVER"
	envNetSkipped = "_LODGE_NET_SKIPPED"
	envIDSource   = "_LODGE_IDMAP_SOURCE"
	envSingleID   = "_LODGE_SINGLE_ID"
)

type options struct {
	host          string
	dataRoot      string
	networkDriver string
	debug         bool
}

func main() {
	if os.Getenv("_LODGE_DEBUG") != "" {
		logrus.SetLevel(logrus.DebugLevel)
	}
	if userns.IsUnshareCall() {
		if err := userns.RunUnshareCall(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if userns.CurrentStage() == userns.StageChild {
		if err := runChild(); err != nil {
			fmt.Fprintln(os.Stderr, "lodged: namespace child:", err)
			os.Exit(1)
		}
		return
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
			if userns.CurrentStage() == userns.StageDaemon {
				return runDaemon(log, env, o)
			}
			return runParent(log, env, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.host, "host", "H", "", "socket to serve the API on (default $XDG_RUNTIME_DIR/lodge/lodge.sock)")
	f.StringVar(&o.dataRoot, "data-root", "", "where images, containers and volumes live (default $XDG_DATA_HOME/lodge)")
	f.StringVar(&o.networkDriver, "network-driver", netns.Auto, "uplink for containers: auto, pasta, slirp4netns, gvisor-tap-vsock or none")
	f.BoolVarP(&o.debug, "debug", "D", false, "log debug messages")
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

// runParent is the host side: one daemon per user, id maps, uplink.
func runParent(log *slog.Logger, env paths.Env, o options) error {
	runDir := env.RuntimeDir()
	if err := paths.EnsurePrivateDir(runDir, env.UID); err != nil {
		return fmt.Errorf("runtime dir: %w", err)
	}
	lock, err := paths.LockDaemon(runDir)
	if err != nil {
		return err
	}
	defer lock.Release()

	u, err := user.Current()
	if err != nil {
		return err
	}
	single, source := chooseIDMap(u)
	if single {
		log.Warn("running with a single-id map", "why", source)
	} else {
		log.Info("id maps from subordinate ranges", "source", source)
	}
	os.Setenv(envIDSource, source)
	os.Setenv(envSingleID, strconv.FormatBool(single))

	choice, err := netns.Choose(o.networkDriver, os.Stderr)
	if err != nil {
		return err
	}
	for _, s := range choice.Skipped {
		log.Info("network driver passed over", "driver", s)
	}
	log.Info("network driver", "name", choice.Name)
	os.Setenv(envNetDriver, choice.Name)
	os.Setenv(envNetSkipped, strings.Join(choice.Skipped, "\n"))

	stateDir := filepath.Join(runDir, "rootlesskit")
	if err := userns.PrepareStateDir(stateDir); err != nil {
		return err
	}
	portDriver, err := netns.PortParent(os.Stderr, stateDir)
	if err != nil {
		return err
	}
	err = userns.RunParent(userns.ParentConfig{
		StateDir: stateDir,
		Network:  choice.Parent,
		Port:     portDriver,
		SingleID: single,
	})
	// A socket left by a daemon that died with its namespace is stale now.
	if fi, serr := os.Lstat(o.socket(env)); serr == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(o.socket(env))
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.ExitCode() == 0 {
		return nil
	}
	return err
}

// chooseIDMap decides between subordinate ranges and the single-id map,
// and says why in words for logs and info.
func chooseIDMap(u *user.User) (single bool, source string) {
	uid, _ := strconv.Atoi(u.Uid)
	uids, gids, src, err := userns.LookupSubIDs(uid, u.Username)
	switch {
	case err != nil:
		return true, "subordinate ids unreadable (" + err.Error() + "); single-id map"
	case src == userns.SourceNone:
		return true, "no subuid/subgid range for " + u.Username + "; single-id map"
	}
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			return true, tool + " not installed (package uidmap); single-id map"
		}
	}
	return false, fmt.Sprintf("%s (uids %v, gids %v)", src, uids, gids)
}

func runChild() error {
	name := os.Getenv(envNetDriver)
	nd, err := netns.ChildDriver(name)
	if err != nil {
		return err
	}
	return userns.RunChild(nd, netns.PortChild(os.Stderr))
}

// runDaemon is the daemon inside the namespace: it serves the API.
func runDaemon(log *slog.Logger, env paths.Env, o options) error {
	dataRoot := o.dataRootOr(env)
	if err := os.MkdirAll(dataRoot, 0o700); err != nil {
		return fmt.Errorf("data root: %w", err)
	}
	var skipped []string
	if s := os.Getenv(envNetSkipped); s != "" {
		skipped = strings.Split(s, "\n")
	}
	sock := o.socket(env)
	sys, err := daemon.NewSystem(daemon.Facts{
		DataRoot:       dataRoot,
		Socket:         sock,
		NetworkDriver:  os.Getenv(envNetDriver),
		PortDriver:     "builtin",
		NetworkSkipped: skipped,
		IDMapSource:    os.Getenv(envIDSource),
		SingleID:       os.Getenv(envSingleID) == "true",
		CgroupRoot:     "/sys/fs/cgroup",
	})
	if err != nil {
		return err
	}
	l, err := api.ListenOwnerSocket(sock, os.Getuid(), log)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	srv := &http.Server{Handler: api.NewServer(api.Backends{System: sys}, log), ReadHeaderTimeout: 30 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
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

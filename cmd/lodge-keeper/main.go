// Command lodge-keeper runs the stages of lodged that hold its namespaces
// (ARCHITECTURE.md draws them): the keeper's host side, which is
// rootlesskit's parent (id maps, the uplink, the port driver's host half);
// rootlesskit's child; the keeper, which holds the namespaces, starts
// lodged's API daemon in them and takes over the uplink and ports when
// the host side dies; and the pin. lodged starts it, users do not; the
// stage comes in _LODGE_STAGE and the facts in lodge's other variables,
// never in arguments.
//
// It is a binary of its own, rather than lodged re-executed, because these
// processes live as long as lodged does, idle: as lodged each carried the
// image store, the registry client, libcontainer and the API, mapped and
// initialized, for ~19 MiB resident apiece (issue 20). It links only
// userns and netns.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/lodge-containers/lodge/netns"
	"github.com/lodge-containers/lodge/paths"
	"github.com/lodge-containers/lodge/proc"
	"github.com/lodge-containers/lodge/userns"
)

func main() {
	// rootlesskit's child runs this executable as `unshare` to make the
	// uplink's network namespace: answered before anything else.
	if userns.IsUnshareCall() {
		if err := userns.RunUnshareCall(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	debugLogs := os.Getenv(userns.EnvKeeperDebug) != ""
	if debugLogs {
		logrus.SetLevel(logrus.DebugLevel) // rootlesskit logs through logrus
	}
	// Every stage here sets up, then waits for the rest of lodged's life
	// with a heap of a few hundred KiB: a small GC target keeps it small,
	// and what set-up used goes back to the kernel once it is done.
	settle := 5 * time.Second
	if userns.CurrentStage() == userns.StageChild {
		// rootlesskit's child (v3.3.0) drops its last reference to the
		// pipe to its parent, an *os.File, before it re-executes itself
		// and uses the descriptor again: a collection in between runs
		// the finalizer that closes it, and the set-up fails with "write
		// : bad file descriptor" (every time under a memory limit that
		// forces collections). No collection until the set-up is done.
		debug.SetGCPercent(-1)
		settle = 30 * time.Second
	} else {
		debug.SetGCPercent(25)
	}
	go func() {
		time.Sleep(settle)
		debug.SetGCPercent(25)
		// What set-up used goes back: the heap's free pages, and the
		// code it faulted in, most of what the stage holds
		// (proc.ReleaseCode). A stage that serves later (the keeper
		// starts a restarted lodged, the port driver forwards) maps
		// back what it touches: once a minute, when either has grown by
		// more than 256 KiB since, both go again. A trim every minute
		// whatever happened measured nothing at rest; with 1 MiB of
		// slack for code alone, a lodged restart left the stages 2.9
		// MiB larger for good. Failures change nothing: the stage runs
		// on.
		releaseWhileIdle(time.Minute, 256)
	}()
	runDir := paths.FromOS().RuntimeDir()
	var err error
	switch userns.CurrentStage() {
	case userns.StageKeeperParent:
		lvl := slog.LevelInfo
		if debugLogs {
			lvl = slog.LevelDebug
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
		err = runKeeperParent(log, runDir)
	case userns.StageChild:
		if err = runChild(); err != nil {
			err = fmt.Errorf("namespace child: %w", err)
		}
	case userns.StageKeeper:
		if err = runKeeper(runDir); err != nil {
			err = fmt.Errorf("keeper: %w", err)
		}
	case userns.StagePin:
		userns.RunPin(runDir)
	default:
		err = errors.New("lodged starts this helper; run lodged (or lodge daemon start) instead")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lodged:", err)
		os.Exit(1)
	}
}

// runKeeperParent is the keeper's host side: id maps and uplink, then
// rootlesskit's parent until the keeper exits.
func runKeeperParent(log *slog.Logger, runDir string) error {
	lock, err := paths.LockKeeper(runDir)
	if err != nil {
		return err
	}
	defer lock.Release()
	// Left behind, the next keeper removes it before it listens.
	defer func() { _ = os.Remove(userns.KeeperSocket(runDir)) }()

	u, err := user.Current()
	if err != nil {
		return err
	}
	single, source := chooseIDMap(u, os.Getenv(userns.EnvForceSingle))
	if single {
		log.Warn("running with a single-id map", "why", source)
	} else {
		log.Info("id maps from subordinate ranges", "source", source)
	}
	// The stages below learn the choices from the environment.
	if err := setenv(userns.EnvIDSource, source, userns.EnvSingleID, strconv.FormatBool(single)); err != nil {
		return err
	}

	choice, err := netns.Choose(askedDriver(), os.Stderr)
	if err != nil {
		return err
	}
	for _, s := range choice.Skipped {
		log.Info("network driver passed over", "driver", s)
	}
	log.Info("network driver", "name", choice.Name)
	if err := setenv(userns.EnvNetDriver, choice.Name, userns.EnvNetSkipped, strings.Join(choice.Skipped, "\n")); err != nil {
		return err
	}

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
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.ExitCode() == 0 {
		return nil
	}
	return err
}

// setenv sets each key to the value after it.
func setenv(kv ...string) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if err := os.Setenv(kv[i], kv[i+1]); err != nil {
			return fmt.Errorf("passing %s on: %w", kv[i], err)
		}
	}
	return nil
}

// chooseIDMap decides between subordinate ranges and the single-id map,
// and says why in words for logs and info.
func chooseIDMap(u *user.User, forced string) (single bool, source string) {
	if forced != "" {
		return true, "single-id map: " + forced
	}
	uid, _ := strconv.Atoi(u.Uid)
	uids, gids, src, err := userns.LookupSubIDs(uid, u.Username)
	switch {
	case err != nil:
		return true, "subordinate ids unreadable (" + err.Error() + "); single-id map"
	case src == userns.SourceNone:
		return true, "no subuid/subgid range for " + u.Username + "; single-id map"
	}
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			return true, tool + " not installed (package uidmap); single-id map"
		}
		if why := userns.PrivilegedHelperProblem(p); why != "" {
			return true, why + "; single-id map"
		}
	}
	return false, fmt.Sprintf("%s (uids %v, gids %v)", src, uids, gids)
}

func runChild() error {
	name := os.Getenv(userns.EnvNetDriver)
	nd, err := netns.ChildDriver(name)
	if err != nil {
		return err
	}
	return userns.RunChild(nd, netns.PortChild(os.Stderr))
}

// runKeeper is the keeper stage, with what it needs to take over from a
// dead host side.
func runKeeper(runDir string) error {
	stateDir := filepath.Join(runDir, "rootlesskit")
	return userns.RunKeeper(userns.KeeperConfig{
		RunDir:   runDir,
		StateDir: stateDir,
		TakeOver: func() (*userns.TakenOver, error) {
			r, err := netns.StartReattach(netns.ReattachConfig{
				Driver: os.Getenv(userns.EnvNetDriver), NSPath: userns.UplinkNSPath(runDir),
				StateDir: stateDir, Log: os.Stderr,
			})
			if r == nil {
				return nil, err
			}
			if err != nil {
				// The ports still work; the message says what does not.
				fmt.Fprintln(os.Stderr, "lodged: keeper:", err)
			}
			srv, err := userns.ServeAPI(stateDir, nil, r.Ports, os.Getpid())
			if err != nil {
				r.Close()
				return nil, err
			}
			t := &userns.TakenOver{Stop: func() { srv.Close(); r.Close() }}
			if r.Uplink != nil {
				t.Helpers = append(t.Helpers, r.Uplink.Process.Pid)
			}
			return t, nil
		},
	})
}

// askedDriver is the uplink driver lodged was asked for, auto when none.
func askedDriver() string {
	if d := os.Getenv(userns.EnvNetAsked); d != "" {
		return d
	}
	return netns.Auto
}

// releaseWhileIdle gives the heap's free pages and the stage's code pages
// back now, then every period in which the stage's file-backed or
// anonymous resident memory grew by more than slackKB.
func releaseWhileIdle(period time.Duration, slackKB int) {
	for {
		debug.FreeOSMemory()
		_, _ = proc.ReleaseCode()
		file, anon := rssKB()
		for {
			time.Sleep(period)
			f, a := rssKB()
			if f > file+slackKB || a > anon+slackKB {
				break
			}
		}
	}
}

func rssKB() (file, anon int) {
	file, _ = strconv.Atoi(proc.StatusField(os.Getpid(), "RssFile"))
	anon, _ = strconv.Atoi(proc.StatusField(os.Getpid(), "RssAnon"))
	return file, anon
}

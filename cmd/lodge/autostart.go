package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/internal/atomicfile"
	"github.com/lodge-containers/lodge/paths"
)

// EnvNoAutostart turns off starting lodged on demand, as --no-autostart.
const EnvNoAutostart = "LODGE_NO_AUTOSTART"

// needsNoDaemon lists the commands that never start lodged by themselves.
var needsNoDaemon = map[string]bool{"daemon": true, "doctor": true, "version": true, "help": true, "completion": true}

// maybeAutostart starts lodged when cmd needs it, the CLI talks to the
// default socket, nothing answers there and autostart is on. Two commands
// that race here start one lodged: the check and the start happen under
// a lock in the runtime dir.
func (a *app) maybeAutostart(cmd *cobra.Command) error {
	if !cmd.HasParent() {
		return nil // bare lodge: help
	}
	for c := cmd; c.HasParent(); c = c.Parent() {
		if needsNoDaemon[c.Name()] {
			return nil
		}
	}
	if a.noAutostart || os.Getenv(EnvNoAutostart) != "" || a.host != a.env.Host() {
		return nil
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
	defer cancel()
	if up, err := a.answering(ctx); up || errors.Is(err, paths.ErrNotOwner) {
		// Up, or served by another user: the command itself refuses that
		// socket, saying so; starting a daemon beside it would not help.
		return nil
	}
	runDir := a.env.RuntimeDir()
	if err := paths.EnsurePrivateDir(runDir, a.env.UID); err != nil {
		return fmt.Errorf("runtime dir: %w; use one of your own (XDG_RUNTIME_DIR)", err)
	}
	f, err := os.OpenFile(filepath.Join(runDir, "autostart.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	defer func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN) }() // closing the file unlocks too
	if up, _ := a.answering(ctx); up {                           // another command started it while we waited
		return nil
	}
	fmt.Fprintf(os.Stderr, "lodge: lodged is not running; starting it (--no-autostart or %s=1 to not)\n", EnvNoAutostart)
	return startDaemon(a, nil, 60*time.Second, os.Stderr)
}

// answering is true when the user's own lodged answers on the default
// socket; the error says why not (paths.ErrNotOwner: another user's).
func (a *app) answering(ctx context.Context) (bool, error) {
	c, err := paths.DialOwner(ctx, a.env.Socket(), a.env.UID)
	if err != nil {
		return false, err
	}
	c.Close()
	return true, nil
}

// ensureDockerContext makes a docker context "lodge" for host and makes
// it current, when the user has no current context of their own (and the
// context does not exist yet), so that `docker ps` reaches lodged without
// DOCKER_HOST. It returns the name when it made one. The rest of the
// docker config (credentials, plugins) is kept as it was.
func ensureDockerContext(env paths.Env, host string) (string, error) {
	const name = "lodge"
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		dir = filepath.Join(env.Home, ".docker")
	}
	cfgPath := filepath.Join(dir, "config.json")
	cfg := map[string]json.RawMessage{}
	if b, err := os.ReadFile(cfgPath); err == nil {
		if err := json.Unmarshal(b, &cfg); err != nil {
			return "", fmt.Errorf("%s: %w", cfgPath, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if cur, ok := cfg["currentContext"]; ok {
		var s string
		_ = json.Unmarshal(cur, &s) // a context that is not a string is not one to switch from
		if s != "" && s != "default" {
			return "", nil // the user chose one
		}
	}
	sum := sha256.Sum256([]byte(name))
	metaDir := filepath.Join(dir, "contexts", "meta", hex.EncodeToString(sum[:]))
	if _, err := os.Stat(filepath.Join(metaDir, "meta.json")); err == nil {
		return "", nil // made before: the user switched away from it on purpose
	}
	meta, _ := json.Marshal(map[string]any{
		"Name":      name,
		"Metadata":  map[string]string{"Description": "lodge: rootless containers of " + filepath.Base(env.Home)},
		"Endpoints": map[string]any{"docker": map[string]any{"Host": host, "SkipTLSVerify": false}},
	})
	if err := os.MkdirAll(metaDir, 0o700); err != nil {
		return "", err
	}
	if err := atomicfile.Write(filepath.Join(metaDir, "meta.json"), meta, 0o644); err != nil {
		return "", err
	}
	cfg["currentContext"], _ = json.Marshal(name)
	b, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return "", err
	}
	return name, atomicfile.Write(cfgPath, b, 0o600)
}

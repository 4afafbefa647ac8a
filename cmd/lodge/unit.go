package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lodge-containers/lodge/internal/atomicfile"
	"github.com/lodge-containers/lodge/paths"
)

// lodged's systemd user units.
const (
	unitName   = "lodged.service"
	socketName = "lodged.socket"
)

// unitText is the user service that runs lodged. Type=notify: lodged
// says READY=1 once its API answers, so units ordered after it (and the
// socket's first client) find it serving. Delegate=yes: its cgroup is
// lodged's to divide, so limits, pause and stats work without asking for
// a scope.
func unitText(lodged string) string {
	return fmt.Sprintf(`# Written by lodge daemon install; lodge daemon uninstall removes it.
[Unit]
Description=lodge: rootless containers of this user (lodged)
Requires=%[2]s
After=%[2]s

[Service]
Type=notify
NotifyAccess=main
ExecStart=%[1]s
Restart=on-failure
Delegate=yes
# Containers do not run under lodged: each has its own lodge-monitor, kept
# with lodge's namespaces by a keeper process, all in this service's
# cgroup. KillMode=process stops lodged alone (SIGTERM to it, then
# SIGKILL after TimeoutStopSec); the keeper, the monitors and the
# containers keep running and the next lodged adopts them, as after a
# kill -9. KillMode=mixed would SIGKILL every process left in the cgroup
# once lodged exits, and control-group (the default) would SIGTERM them
# all at once: both take the containers down with lodged.
KillMode=process
TimeoutStopSec=20

[Install]
WantedBy=default.target
Also=%[2]s
`, systemdQuote(lodged), socketName)
}

// socketText is the socket that starts lodged on the first connection
// and hands it the listener (LISTEN_FDS). Only the user may connect: the
// API is root-equivalent inside the user's namespace.
func socketText() string {
	return `# Written by lodge daemon install; lodge daemon uninstall removes it.
[Unit]
Description=lodge API socket: starts lodged on the first connection

[Socket]
ListenStream=%t/lodge/lodge.sock
SocketMode=0600
DirectoryMode=0700

[Install]
WantedBy=sockets.target
`
}

// systemdQuote quotes an ExecStart path when it needs it.
func systemdQuote(p string) string {
	if !strings.ContainsAny(p, " \t\"'\\") {
		return p
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p) + `"`
}

func unitDir(env paths.Env) string {
	cfg := env.XDGConfigHome
	if cfg == "" {
		cfg = filepath.Join(env.Home, ".config")
	}
	return filepath.Join(cfg, "systemd", "user")
}

// lingering tells whether systemd keeps user's manager (and so lodged and
// its containers) running with no session open.
func lingering(user string) bool {
	_, err := os.Stat(filepath.Join("/var/lib/systemd/linger", user))
	return err == nil
}

// lingerNote says what happens to containers at logout.
func lingerNote(user string) string {
	if lingering(user) {
		return "linger is on for " + user + ": lodged and your containers keep running after you log out"
	}
	return "linger is off for " + user + ": when your last session ends systemd stops your user manager, and lodged and every running container with it; to keep them, run: loginctl enable-linger " + user
}

func daemonInstallCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "install",
		Short: "Install lodged as systemd user units (a socket that starts it on demand, and the service)",
		Long: `lodge daemon install writes lodged.service and lodged.socket to
~/.config/systemd/user and runs systemctl --user enable --now lodged.socket:
lodged then starts on the first connection to its socket (any lodge or
docker command) and at login. Stopping lodged.service stops lodged alone;
running containers stay up and the next lodged adopts them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, err := paths.Helper("lodged")
			if err != nil {
				return fmt.Errorf("cannot find lodged: %w", err)
			}
			if bin, err = filepath.Abs(bin); err != nil {
				return err
			}
			dir := unitDir(a.env)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			for _, u := range []struct{ name, text string }{{unitName, unitText(bin)}, {socketName, socketText()}} {
				p := filepath.Join(dir, u.name)
				if err := atomicfile.Write(p, []byte(u.text), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(a.out, "wrote %s\n", p)
			}
			if name, err := ensureDockerContext(a.env, a.env.Host()); err != nil {
				fmt.Fprintf(a.out, "lodge: could not make a docker context: %v\n", err)
			} else if name != "" {
				fmt.Fprintf(a.out, "docker context %q created and made current: the docker CLI talks to lodged without DOCKER_HOST\n", name)
			}
			user := os.Getenv("USER")
			if err := systemctlUser(a.out, "daemon-reload"); err != nil {
				fmt.Fprintf(a.out, "systemctl --user is not reachable here (%v): once it is, run 'systemctl --user enable --now %s'; until then any lodge command starts lodged\n", err, socketName)
				fmt.Fprintln(a.out, lingerNote(user))
				return nil
			}
			if pid, err := paths.ReadDaemonPID(a.env.RuntimeDir()); err == nil {
				// It holds the socket's path: systemd could not bind it.
				fmt.Fprintf(a.out, "stopping the running lodged (pid %d) so that systemd serves its socket; containers keep running\n", pid)
				if err := stopDaemon(a, 20*time.Second); err != nil {
					return err
				}
			}
			if err := systemctlUser(a.out, "enable", "--now", socketName); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "%s listens on %s: lodged starts on the first connection, and at login\n", socketName, a.env.Socket())
			fmt.Fprintln(a.out, lingerNote(user))
			return nil
		},
	}
}

func daemonUninstallCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "uninstall",
		Short: "Stop, disable and remove lodged's systemd user units (containers, images and the docker context stay)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := unitDir(a.env)
			if _, err := os.Stat(filepath.Join(dir, unitName)); err != nil {
				return fmt.Errorf("%s is not installed (%s)", unitName, dir)
			}
			if err := systemctlUser(io.Discard, "disable", "--now", socketName, unitName); err != nil {
				fmt.Fprintf(a.out, "systemctl --user: %v (the units are removed anyway)\n", err)
			}
			for _, name := range []string{socketName, unitName} {
				p := filepath.Join(dir, name)
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
				fmt.Fprintf(a.out, "removed %s\n", p)
			}
			// Without a reachable user manager (no session bus, as on
			// many shared machines) there is nothing to reload: the
			// units are gone, which is what uninstall promises.
			if err := systemctlUser(io.Discard, "daemon-reload"); err != nil {
				fmt.Fprintf(a.out, "systemctl --user daemon-reload: %v (the units are removed; systemd forgets them at its next start)\n", err)
			}
			return nil
		},
	}
}

func systemctlUser(out io.Writer, args ...string) error {
	if _, err := exec.LookPath("systemctl"); err != nil {
		return fmt.Errorf("no systemctl")
	}
	var errb bytes.Buffer
	c := exec.Command("systemctl", append([]string{"--user"}, args...)...)
	c.Stdout, c.Stderr = out, &errb
	if err := c.Run(); err != nil {
		return fmt.Errorf("systemctl --user %s: %s", strings.Join(args, " "), strings.TrimSpace(errb.String()))
	}
	return nil
}

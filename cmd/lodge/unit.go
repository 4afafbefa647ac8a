package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lodge-containers/lodge/internal/atomicfile"
	"github.com/lodge-containers/lodge/paths"
)

// unitName is lodged's systemd user unit.
const unitName = "lodged.service"

// unitText is the user unit that runs lodged: in a cgroup systemd
// delegates to it (so limits, pause and stats work without asking for a
// scope), restarted when it fails, and stopped alone (KillMode=process):
// containers outlive a restart of lodged, as they do a kill -9.
func unitText(lodged string) string {
	return fmt.Sprintf(`[Unit]
Description=lodge: rootless containers of this user (lodged)
After=default.target

[Service]
Type=simple
ExecStart=%s
Restart=on-failure
Delegate=yes
KillMode=process
TimeoutStopSec=20

[Install]
WantedBy=default.target
`, lodged)
}

func unitPath(env paths.Env) string {
	cfg := env.XDGConfigHome
	if cfg == "" {
		cfg = filepath.Join(env.Home, ".config")
	}
	return filepath.Join(cfg, "systemd", "user", unitName)
}

func daemonInstallCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "install",
		Short: "Install lodged as a systemd user service, enabled and started",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, err := paths.Helper("lodged")
			if err != nil {
				return fmt.Errorf("cannot find lodged: %w", err)
			}
			if bin, err = filepath.Abs(bin); err != nil {
				return err
			}
			p := unitPath(a.env)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := atomicfile.Write(p, []byte(unitText(bin)), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "wrote %s\n", p)
			if err := systemctlUser(a.out, "daemon-reload"); err != nil {
				fmt.Fprintf(a.out, "systemctl --user is not reachable here (%v): once it is, run 'systemctl --user enable --now %s'; until then 'lodge daemon start' (or any lodge command) starts lodged\n", err, unitName)
				return nil
			}
			if err := systemctlUser(a.out, "enable", "--now", unitName); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "lodged runs as %s and starts at login; to keep it after you log out: loginctl enable-linger %s\n", unitName, os.Getenv("USER"))
			return nil
		},
	}
}

func daemonUninstallCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "uninstall",
		Short: "Stop, disable and remove lodged's systemd user service (containers and images stay)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := unitPath(a.env)
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("%s is not installed (%s)", unitName, p)
			}
			if err := systemctlUser(io.Discard, "disable", "--now", unitName); err != nil {
				fmt.Fprintf(a.out, "systemctl --user: %v (the unit is removed anyway)\n", err)
			}
			if err := os.Remove(p); err != nil {
				return err
			}
			systemctlUser(io.Discard, "daemon-reload")
			fmt.Fprintf(a.out, "removed %s\n", p)
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

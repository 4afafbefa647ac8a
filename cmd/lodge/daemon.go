package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/paths"
)

func daemonCmd(a *app) *cobra.Command {
	d := &cobra.Command{Use: "daemon", Short: "Start, stop or check lodged"}
	var wait time.Duration
	start := &cobra.Command{
		Use:   "start [-- LODGED-FLAGS...]",
		Short: "Start lodged in the background and wait until it answers",
		RunE: func(cmd *cobra.Command, args []string) error {
			return startDaemon(a, args, wait, a.out)
		},
	}
	start.Flags().DurationVar(&wait, "wait", 60*time.Second, "how long to wait for the socket to answer")
	stop := &cobra.Command{
		Use:   "stop",
		Short: "Stop lodged (SIGTERM, then SIGKILL after the timeout)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return stopDaemon(a, wait) },
	}
	stop.Flags().DurationVar(&wait, "timeout", 20*time.Second, "how long to wait before SIGKILL")
	status := &cobra.Command{
		Use:   "status",
		Short: "Say whether lodged is running and answering",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			runDir, err := a.runDir()
			if err != nil {
				return err
			}
			pid, err := paths.ReadDaemonPID(runDir)
			if err != nil {
				return errors.New("lodged is not running")
			}
			if err := ping(a); err != nil {
				return fmt.Errorf("lodged (pid %d) is not answering on %s: %v", pid, a.host, err)
			}
			fmt.Fprintf(a.out, "lodged is running (pid %d) on %s\n", pid, a.host)
			return nil
		},
	}
	d.AddCommand(start, stop, status, daemonInstallCmd(a), daemonUninstallCmd(a))
	return d
}

func ping(a *app) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := contextWithTimeout(2 * time.Second)
	defer cancel()
	_, err = c.Ping(ctx, client.PingOptions{})
	return err
}

// runDir is the runtime dir, refused when another user could have put
// the pid file in it that stop would signal.
func (a *app) runDir() (string, error) {
	dir := a.env.RuntimeDir()
	if err := paths.CheckPrivateDir(dir, a.env.UID); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("runtime dir: %w; use one of your own (XDG_RUNTIME_DIR)", err)
	}
	return dir, nil
}

// startDaemon starts lodged with args and waits until it answers; what it
// has to say goes to out.
func startDaemon(a *app, args []string, wait time.Duration, out io.Writer) error {
	runDir := a.env.RuntimeDir()
	if err := paths.EnsurePrivateDir(runDir, a.env.UID); err != nil {
		return fmt.Errorf("runtime dir: %w; use one of your own (XDG_RUNTIME_DIR)", err)
	}
	if pid, err := paths.ReadDaemonPID(runDir); err == nil {
		return errdefs.Conflictf("lodged is already running (pid %d)", pid)
	}
	bin, err := paths.Helper("lodged")
	if err != nil {
		return fmt.Errorf("cannot find lodged: %w", err)
	}
	logPath := filepath.Join(runDir, "lodged.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	if strings.HasPrefix(a.host, "unix://") && a.host != a.env.Host() {
		args = append([]string{"--host", a.host}, args...)
	}
	// --detach: lodged returns once its API answers, and no process
	// stays behind only to wait for the daemon.
	cmd := exec.Command(bin, append([]string{"--detach"}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			return fmt.Errorf("lodged exited (%v); its log %s ends:\n%s", err, logPath, tail(logPath, 10))
		}
	case <-time.After(wait):
		cmd.Process.Kill()
		return fmt.Errorf("lodged did not answer within %s; see %s", wait, logPath)
	}
	if err := ping(a); err != nil {
		return fmt.Errorf("lodged started but does not answer on %s: %v; see %s", a.host, err, logPath)
	}
	pid, _ := paths.ReadDaemonPID(runDir)
	fmt.Fprintf(out, "lodged started (pid %d), log in %s\n", pid, logPath)
	if name, err := ensureDockerContext(a.env, a.host); err != nil {
		fmt.Fprintf(out, "lodge: could not make a docker context: %v\n", err)
	} else if name != "" {
		fmt.Fprintf(out, "docker context %q created and made current: the docker CLI talks to lodged without DOCKER_HOST\n", name)
	}
	return nil
}

func stopDaemon(a *app, timeout time.Duration) error {
	runDir, err := a.runDir()
	if err != nil {
		return err
	}
	pid, err := paths.ReadDaemonPID(runDir)
	if err != nil {
		return errors.New("lodged is not running")
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("signalling lodged (pid %d): %w", pid, err)
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := paths.ReadDaemonPID(runDir); err != nil {
			fmt.Fprintf(a.out, "lodged (pid %d) stopped\n", pid)
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL) // one gone meanwhile is what is wanted
	return fmt.Errorf("lodged (pid %d) did not stop within %s and was killed", pid, timeout)
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lodge-containers/lodge/paths"
)

// unshareCmd is Podman's unshare: a command in lodged's user and mount
// namespaces. There the user is root, the subordinate ids the containers
// use exist (chown a directory to a container's uid before bind-mounting
// it), and the storage is mounted as lodged sees it. With
// --rootless-netns it also joins the network namespace of lodged's
// bridges, where containers answer on their own addresses.
func unshareCmd(a *app) *cobra.Command {
	var withNet bool
	c := &cobra.Command{
		Use:   "unshare [--rootless-netns] [COMMAND [ARG...]]",
		Short: "Run a command (or your shell) as root in lodged's user and mount namespaces",
		Long: "Run a command as root in lodged's user and mount namespaces, where the subordinate ids exist " +
			"(e.g. lodge unshare chown 1000:1000 DIR, for a container whose user is 1000). " +
			"With --rootless-netns, also in the network namespace of lodged's bridges, where containers' addresses answer. " +
			"Without a command, runs $SHELL. Needs nsenter (util-linux).",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runUnshare(a, withNet, args) },
	}
	c.Flags().SetInterspersed(false) // the command's own flags are its
	c.Flags().BoolVar(&withNet, "rootless-netns", false, "also join the network namespace of lodged's bridges")
	return c
}

func runUnshare(a *app, withNet bool, args []string) error {
	runDir, err := a.runDir()
	if err != nil {
		return err
	}
	pid, err := paths.ReadDaemonPID(runDir)
	if err != nil {
		return fmt.Errorf("lodged is not running (lodge daemon start): %w", err)
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return errors.New("lodge unshare needs nsenter, from util-linux, on PATH")
	}
	if len(args) == 0 {
		sh := os.Getenv("SHELL")
		if sh == "" {
			sh = "/bin/sh"
		}
		args = []string{sh}
	}
	// A multi-threaded process cannot join a user namespace, and a Go
	// program is one from its start: nsenter joins them, then execs.
	// --preserve-credentials keeps the user's own ids, which the map
	// makes root inside; the working directory is the user's, as lodged's
	// mount namespace has the host's files.
	nsArgs := []string{"--target", strconv.Itoa(pid), "--user", "--mount", "--preserve-credentials"}
	if wd, err := os.Getwd(); err == nil {
		nsArgs = append(nsArgs, "--wd="+wd)
	}
	nsArgs = append(nsArgs, "--")
	if withNet {
		// The namespace is mounted inside lodged's mount namespace only:
		// a second nsenter, already there, opens it.
		nsArgs = append(nsArgs, nsenter, "--net="+paths.UplinkNS(runDir), "--")
	}
	cmd := exec.Command(nsenter, append(nsArgs, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// The terminal's ^C and ^\ reach the command (same process group);
	// lodge waits for its end and exits as it did.
	signal.Ignore(syscall.SIGINT, syscall.SIGQUIT)
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return exitError{128 + int(ws.Signal())}
		}
		return exitError{ee.ExitCode()}
	}
	return err
}

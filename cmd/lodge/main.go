// Command lodge is lodge's CLI. It talks to lodged through moby's Docker
// Engine API client; this file wires the commands together.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/lodge-containers/lodge/paths"
)

// app is what every command shares: where lodged is and how to reach it.
type app struct {
	env  paths.Env
	host string
	out  io.Writer
	// noAutostart keeps commands from starting lodged when it is not
	// running (--no-autostart, LODGE_NO_AUTOSTART).
	noAutostart bool
}

func (a *app) client() (*client.Client, error) {
	opts := []client.Opt{client.WithHost(a.host), client.WithAPIVersionNegotiation()}
	if sock, ok := strings.CutPrefix(a.host, "unix://"); ok {
		// Nothing is sent to a socket that another user serves: in a
		// shared /tmp they could have planted it to collect what the CLI
		// sends (login passwords, build contexts).
		opts = append(opts, client.WithDialContext(func(ctx context.Context, _, _ string) (net.Conn, error) {
			return paths.DialOwner(ctx, sock, a.env.UID)
		}))
	}
	return client.New(opts...)
}

// explain turns "cannot connect" into a one-line hint.
func (a *app) explain(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, paths.ErrNotOwner) {
		return err
	}
	if errors.Is(err, syscall.EACCES) || strings.Contains(err.Error(), "permission denied while trying to connect") {
		return fmt.Errorf("cannot reach lodged at %s: permission denied; the socket is not yours to open (check its owner and mode, or use your own with --host)", a.host)
	}
	var opErr *net.OpError
	if client.IsErrConnectionFailed(err) || errors.As(err, &opErr) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("cannot reach lodged at %s: is it running? Start it with 'lodge daemon start'", a.host)
	}
	return err
}

func main() {
	if isProbe() { // lodge doctor's namespace child
		runProbe()
		return
	}
	a := &app{env: paths.FromOS(), out: os.Stdout}
	root := &cobra.Command{
		Use:           "lodge",
		Short:         "lodge: rootless containers for one user, Docker-compatible",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.host == "" {
				a.host = a.env.Host()
			}
			return a.maybeAutostart(cmd)
		},
	}
	root.PersistentFlags().BoolVar(&a.noAutostart, "no-autostart", false, "do not start lodged when it is not running (also "+EnvNoAutostart+"=1)")
	root.PersistentFlags().StringVarP(&a.host, "host", "H", "", "lodged to talk to (default $LODGE_HOST, else unix://$XDG_RUNTIME_DIR/lodge/lodge.sock)")
	root.AddCommand(versionCmd(a), infoCmd(a), daemonCmd(a),
		runCmd(a), createCmd(a), startCmd(a), stopCmd(a), rmCmd(a), psCmd(a), logsCmd(a), execCmd(a),
		restartCmd(a), killCmd(a), waitCmd(a), renameCmd(a), topCmd(a), inspectCmd(a), attachCmd(a), containerCmd(a),
		pullCmd(a), pushCmd(a), imagesCmd(a), tagCmd(a), rmiCmd(a), loadCmd(a), saveCmd(a),
		historyCmd(a), importCmd(a), imageCmd(a), loginCmd(a), logoutCmd(a), buildCmd(a),
		networkCmd(a), portCmd(a),
		volumeCmd(a), cpCmd(a), diffCmd(a), exportCmd(a), commitCmd(a), systemCmd(a),
		pauseCmd(a), unpauseCmd(a), updateCmd(a), statsCmd(a), doctorCmd(a), eventsCmd(a), builderCmd(a), unshareCmd(a))
	if err := root.ExecuteContext(context.Background()); err != nil {
		var exit exitError
		if errors.As(err, &exit) {
			os.Exit(exit.code) // the container's own code, as docker run gives it
		}
		fmt.Fprintln(os.Stderr, "lodge:", strings.TrimSpace(err.Error()))
		os.Exit(1)
	}
}

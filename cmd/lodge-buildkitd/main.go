// Command lodge-buildkitd serves BuildKit for lodged: `docker buildx build`
// and compose v2 reach it through lodged's POST /grpc and POST /session,
// which lodged forwards byte for byte to this helper's socket. lodged
// starts it on the first such request, inside its own namespaces; it is
// not meant to be run by hand.
//
//	lodge-buildkitd --root DATA_ROOT/buildkit --socket RUNTIME_DIR/buildkitd.sock --lodge-socket LODGE_SOCKET --runc RUNC
//
// It prints "ready" on stdout once the socket accepts, and exits when
// interrupted or when the process that started it is gone.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/lodge-containers/lodge/buildkitd"
)

func main() {
	root := flag.String("root", "", "BuildKit's state directory")
	sock := flag.String("socket", "", "unix socket to serve /grpc and /session on")
	lodge := flag.String("lodge-socket", "", "lodged's API socket, where images are loaded and local images read")
	runc := flag.String("runc", "runc", "the runc binary that runs build steps")
	debug := flag.Bool("debug", false, "log BuildKit's debug messages")
	flag.Parse()
	if *root == "" || *sock == "" || *lodge == "" {
		fmt.Fprintln(os.Stderr, "usage: lodge-buildkitd --root DIR --socket PATH --lodge-socket PATH")
		os.Exit(2)
	}
	level := slog.LevelInfo
	logrus.SetLevel(logrus.WarnLevel) // BuildKit logs through logrus; its info lines are per request
	if *debug {
		level = slog.LevelDebug
		logrus.SetLevel(logrus.DebugLevel)
	}
	logrus.SetOutput(os.Stderr)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := run(*root, *sock, *lodge, *runc, log); err != nil {
		log.Error("lodge-buildkitd", "err", err)
		os.Exit(1)
	}
}

func run(root, sock, lodge, runc string, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := buildkitd.New(ctx, buildkitd.Config{Root: root, Runc: runc, LodgeSocket: lodge, Loader: &buildkitd.SocketLoader{Socket: lodge}, Log: log})
	if err != nil {
		return err
	}
	defer func() {
		// BuildKit's controller closes its databases here.
		if err := srv.Close(); err != nil {
			log.Warn("closing BuildKit", "err", err)
		}
	}()
	// A helper that died left it; BuildKit's lock on root already proves
	// no other runs.
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		return err
	}
	go watchParent(l)
	// lodged reads this; without it lodged gives up on the helper.
	if _, err := io.WriteString(os.Stdout, "ready\n"); err != nil {
		return fmt.Errorf("telling lodged: %w", err)
	}
	return srv.Serve(l)
}

// watchParent closes the listener when a signal comes or lodged is gone.
// lodged also sets a parent-death signal; the poll covers the case where
// the thread that started us ends before lodged does.
func watchParent(l net.Listener) {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	parent := os.Getppid()
	tick := time.NewTicker(time.Second)
	for {
		select {
		case <-stop:
			l.Close()
			return
		case <-tick.C:
			if os.Getppid() != parent {
				l.Close()
				return
			}
		}
	}
}

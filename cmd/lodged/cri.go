package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/lodge-containers/lodge/cri"
	"github.com/lodge-containers/lodge/daemon"
	"github.com/lodge-containers/lodge/paths"
)

// serveCRI serves the Kubernetes CRI on its socket beside the API's until
// ctx ends or the function it returns is called, which stops the server
// and waits for it.
func serveCRI(ctx context.Context, log *slog.Logger, env paths.Env, svc *services, capi daemon.ContainerAPI, podSubnet string) (func(), error) {
	sock := env.CRISocket()
	l, err := cri.Listen(sock, os.Getuid(), log)
	if err != nil {
		return nil, fmt.Errorf("CRI socket: %w", err)
	}
	pause, err := paths.Helper("lodge-init")
	if err != nil {
		log.Warn("lodge-init is not installed beside lodged: CRI pod sandboxes cannot start", "err", err)
	}
	s := cri.New(cri.Backends{
		Containers: capi, Resources: capi, Execs: daemon.ExecAPI(svc.containers),
		Networks: daemon.NetworkAPI{NetworkStore: svc.networks, Containers: svc.containers},
		Images:   svc.images, ImageRoot: svc.store.GraphRoot(),
		PauseBinary: pause, PodSubnet: podSubnet,
	}, log)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(ctx, l); err != nil {
			log.Error("CRI server", "err", err)
		}
	}()
	log.Info("CRI served", "socket", sock)
	return func() { cancel(); <-done }, nil
}

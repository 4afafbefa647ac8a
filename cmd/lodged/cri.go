package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/lodge-containers/lodge/cri"
	"github.com/lodge-containers/lodge/paths"
)

// serveCRI serves the Kubernetes CRI on its socket beside the API's until
// ctx ends; the function it returns waits for the server to stop.
func serveCRI(ctx context.Context, log *slog.Logger, env paths.Env, svc *services) (func(), error) {
	sock := env.CRISocket()
	l, err := cri.Listen(sock, os.Getuid(), log)
	if err != nil {
		return nil, fmt.Errorf("CRI socket: %w", err)
	}
	s := cri.New(criBackends(svc), log)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(ctx, l); err != nil {
			log.Error("CRI server", "err", err)
		}
	}()
	log.Info("CRI served", "socket", sock)
	return func() { <-done }, nil
}

// criBackends are the services the CRI is served over.
func criBackends(svc *services) cri.Backends {
	return cri.Backends{Images: svc.images, ImageRoot: svc.store.GraphRoot()}
}

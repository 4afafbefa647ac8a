package cri

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/version"
)

// pauseImage is the sandboxes' image: lodge-init alone, made locally from
// lodged's own static binary, so a pod needs no registry.
var pauseImage = "lodge/pause:" + version.Release

// pauseCmd is what a sandbox runs: pid 1 that reaps and waits for its stop.
var pauseCmd = []string{"/pause", "--pause"}

// ensurePause makes the pause image the first time a sandbox needs it:
// `docker import` of a layer holding lodge-init at /pause, with its
// entrypoint.
func (s *Server) ensurePause(ctx context.Context) error {
	s.pauseMu.Lock()
	defer s.pauseMu.Unlock()
	if _, err := s.b.Images.Inspect(pauseImage); err == nil {
		return nil
	} else if !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	if s.b.PauseBinary == "" {
		return errdefs.Unavailablef("lodge-init is not installed beside lodged: pod sandboxes need it as their pause process")
	}
	bin, err := os.ReadFile(s.b.PauseBinary)
	if err != nil {
		return fmt.Errorf("reading the pause binary: %w", err)
	}
	layer, err := pauseLayer(bin)
	if err != nil {
		return err
	}
	if _, err := s.b.Images.Import(ctx, bytes.NewReader(layer), pauseImage, []string{pauseEntrypoint()}, "lodge: the pod sandbox's pause process (lodge-init --pause)", "", nil); err != nil {
		return fmt.Errorf("making %s: %w", pauseImage, err)
	}
	return nil
}

// pauseEntrypoint is the import's ENTRYPOINT change: pauseCmd, exec form.
func pauseEntrypoint() string {
	b, _ := json.Marshal(pauseCmd) // a []string always marshals
	return "ENTRYPOINT " + string(b)
}

// pauseLayer is a layer tar whose one file is bin at /pause.
func pauseLayer(bin []byte) ([]byte, error) {
	var layer bytes.Buffer
	lt := tar.NewWriter(&layer)
	if err := lt.WriteHeader(&tar.Header{Name: "pause", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		return nil, err
	}
	if _, err := lt.Write(bin); err != nil {
		return nil, err
	}
	if err := lt.Close(); err != nil {
		return nil, err
	}
	return layer.Bytes(), nil
}

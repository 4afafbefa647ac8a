package cri

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"time"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/version"
)

// pauseImage is the sandboxes' image: lodge-init alone, made locally from
// lodged's own static binary, so a pod needs no registry.
var pauseImage = "lodge/pause:" + version.Release

// pauseCmd is what a sandbox runs: pid 1 that reaps and waits for its stop.
var pauseCmd = []string{"/pause", "--pause"}

// ensurePause makes the pause image the first time a sandbox needs it.
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
	archive, err := pauseArchive(bin)
	if err != nil {
		return err
	}
	if err := s.b.Images.Load(ctx, bytes.NewReader(archive), nil); err != nil {
		return fmt.Errorf("loading %s: %w", pauseImage, err)
	}
	return nil
}

// pauseArchive is a docker-archive (what docker save writes) of a
// one-layer image whose layer is bin at /pause.
func pauseArchive(bin []byte) ([]byte, error) {
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
	layerSum := sha256.Sum256(layer.Bytes())
	layerHex := hex.EncodeToString(layerSum[:])
	config, err := json.Marshal(map[string]any{
		"architecture": goruntime.GOARCH,
		"os":           "linux",
		"created":      time.Unix(0, 0).UTC(),
		"config":       map[string]any{"Entrypoint": pauseCmd},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + layerHex}},
		"history":      []map[string]any{{"created": time.Unix(0, 0).UTC(), "created_by": "lodge: the pod sandbox's pause process (lodge-init --pause)"}},
	})
	if err != nil {
		return nil, err
	}
	configSum := sha256.Sum256(config)
	configName := hex.EncodeToString(configSum[:]) + ".json"
	manifest, err := json.Marshal([]map[string]any{{
		"Config": configName, "RepoTags": []string{pauseImage}, "Layers": []string{layerHex + "/layer.tar"},
	}})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for _, f := range []struct {
		name string
		data []byte
	}{{layerHex + "/layer.tar", layer.Bytes()}, {configName, config}, {"manifest.json", manifest}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

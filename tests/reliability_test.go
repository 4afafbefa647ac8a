package tests

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestZeroLayerImageLoads: an image with no layers (a config-only image,
// as `FROM scratch` plus metadata makes) loads; it used to panic the
// handler and leave the client with EOF.
func TestZeroLayerImageLoads(t *testing.T) {
	s, docker := containerSession(t)
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"/nothing"}, "Labels": map[string]string{"empty": "yes"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{}},
	})
	sum := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(sum[:]) + ".json"
	manifest, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{"empty:1"}, "Layers": []string{}}})
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range []struct {
		name string
		data []byte
	}{{cfgName, cfg}, {"manifest.json", manifest}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg})
		tw.Write(f.data)
	}
	tw.Close()
	path := filepath.Join(s.base, "empty.tar")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644)
	if r := s.must(docker, "load", "-i", path); !strings.Contains(r.stdout, "Loaded image: empty:1") {
		t.Errorf("load of a zero-layer image: %s", r)
	}
	if r := s.must(docker, "image", "inspect", "-f", "{{len .RootFS.Layers}} {{.Config.Labels.empty}}", "empty:1"); strings.TrimSpace(r.stdout) != "0 yes" {
		t.Errorf("inspect: %s", r)
	}
	s.must(docker, "rmi", "empty:1")
}

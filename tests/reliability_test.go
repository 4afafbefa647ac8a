package tests

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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

// TestSlowSaveHoldsNoLock: a client that stops reading a `docker save`
// must not block other clients' image commands.
func TestSlowSaveHoldsNoLock(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "run", "--name", "maker", "busybox", "sh", "-c", "head -c 40000000 /dev/urandom > /big")
	s.must(docker, "commit", "maker", "big:1")
	s.must(docker, "rm", "maker")
	// docker save into a pipe nobody reads: the CLI stops reading the
	// socket once the pipe is full.
	stuck := s.command(context.Background(), "sh", "-c", docker+" save big:1 | sleep 60")
	if err := stuck.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stuck.Process.Kill()
		stuck.Wait()
		exec.Command("pkill", "-u", strconv.Itoa(s.u.uid), "-f", "save big:1").Run()
	}()
	time.Sleep(2 * time.Second)
	done := make(chan result, 1)
	go func() { done <- s.run(docker, "images", "--format", "{{.Repository}}") }()
	select {
	case r := <-done:
		if r.code != 0 || !strings.Contains(r.stdout, "big") {
			t.Errorf("docker images beside a stuck save: %s", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("docker images waited on a client that stopped reading a save")
	}
	if r := s.run(docker, "tag", "busybox", "busybox:other"); r.code != 0 {
		t.Errorf("docker tag beside a stuck save: %s", r)
	}
}

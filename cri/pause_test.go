package cri

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"testing"
)

// The pause image is a docker-archive whose one layer holds the binary at
// /pause and whose config's diff ID is that layer's digest.
func TestPauseArchive(t *testing.T) {
	bin := []byte("\x7fELF not really")
	a, err := pauseArchive(bin)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(a))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name], _ = io.ReadAll(tr)
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest) != 1 || len(manifest[0].RepoTags) != 1 || manifest[0].RepoTags[0] != pauseImage || len(manifest[0].Layers) != 1 {
		t.Fatalf("manifest = %+v", manifest)
	}
	var config struct {
		Config struct{ Entrypoint []string }
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(files[manifest[0].Config], &config); err != nil {
		t.Fatal(err)
	}
	layer := files[manifest[0].Layers[0]]
	sum := sha256.Sum256(layer)
	if len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("diff IDs %v, layer digest %x", config.RootFS.DiffIDs, sum)
	}
	if len(config.Config.Entrypoint) != 2 || config.Config.Entrypoint[0] != "/pause" {
		t.Errorf("entrypoint %v", config.Config.Entrypoint)
	}
	lr := tar.NewReader(bytes.NewReader(layer))
	h, err := lr.Next()
	if err != nil || h.Name != "pause" || h.Mode&0o111 == 0 {
		t.Fatalf("layer's first entry %+v, %v", h, err)
	}
	if got, _ := io.ReadAll(lr); !bytes.Equal(got, bin) {
		t.Errorf("layer's /pause is %q, want the binary", got)
	}
}

func TestNamesAndLabels(t *testing.T) {
	if got := sandboxName("web", "default", "u1", 2); got != "k8s_POD_web_default_u1_2" {
		t.Errorf("sandboxName = %s", got)
	}
	if got := containerName("nginx", "web", "default", "u1", 0); got != "k8s_nginx_web_default_u1_0" {
		t.Errorf("containerName = %s", got)
	}
	l, err := criLabels(map[string]string{"app": "web"}, map[string]string{"note": "x"}, map[string]string{labelType: typeSandbox})
	if err != nil {
		t.Fatal(err)
	}
	if l["app"] != "web" || l[annotationPrefix+"note"] != "x" || l[labelType] != typeSandbox {
		t.Errorf("labels = %v", l)
	}
	labels, annotations := requestLabels(l)
	if len(labels) != 1 || labels["app"] != "web" || len(annotations) != 1 || annotations["note"] != "x" {
		t.Errorf("read back %v %v", labels, annotations)
	}
}

package cri

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The pause image is imported under pauseImage from a layer whose one
// file is the binary at /pause, executable, with /pause --pause as its
// entrypoint.
func TestPauseImage(t *testing.T) {
	bin := []byte("\x7fELF not really")
	path := filepath.Join(t.TempDir(), "lodge-init")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	imgs := &fakePauseImages{}
	s := New(Backends{Images: imgs, PauseBinary: path}, quiet)
	for range 2 {
		if err := s.ensurePause(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if imgs.loaded != 1 {
		t.Errorf("imported %d times, want once", imgs.loaded)
	}
	if _, ok := imgs.find(pauseImage); !ok {
		t.Errorf("no image named %s after the import", pauseImage)
	}
	var entrypoint []string
	if len(imgs.changes) != 1 || !strings.HasPrefix(imgs.changes[0], "ENTRYPOINT ") ||
		json.Unmarshal([]byte(strings.TrimPrefix(imgs.changes[0], "ENTRYPOINT ")), &entrypoint) != nil ||
		len(entrypoint) != 2 || entrypoint[0] != "/pause" || entrypoint[1] != "--pause" {
		t.Errorf("import changes %q, want the entrypoint /pause --pause", imgs.changes)
	}
	lr := tar.NewReader(bytes.NewReader(imgs.layer))
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

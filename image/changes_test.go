package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

func TestProgressErrorBothShapes(t *testing.T) {
	var b bytes.Buffer
	NewProgress(&b).Error(errors.New("pull access denied"))
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["error"] != "pull access denied" {
		t.Errorf("no top-level error: %s", b.String())
	}
	if d, ok := m["errorDetail"].(map[string]any); !ok || d["message"] != "pull access denied" {
		t.Errorf("no errorDetail: %s", b.String())
	}
}

func TestApplyChangeEnv(t *testing.T) {
	c := dockerspec.DockerOCIImageConfig{}
	c.Env = []string{"PATH=/usr/bin:/bin", "A=1"}
	for _, ch := range []string{"ENV PATH=$PATH:/opt/bin", "ENV A 2", "ENV B=${A}x"} {
		if err := applyChange(&c, ch); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"PATH=/usr/bin:/bin:/opt/bin", "A=2", "B=2x"}
	if strings.Join(c.Env, " ") != strings.Join(want, " ") {
		t.Errorf("Env = %q, want %q", c.Env, want)
	}
}

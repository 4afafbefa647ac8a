package image

import (
	"strings"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

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

package daemon

import (
	"strings"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/daemon/health"
)

func TestHealthText(t *testing.T) {
	h := &container.Health{Status: container.Unhealthy}
	if healthText(h) != " (unhealthy)" || healthText(&container.Health{Status: container.Starting}) != " (health: starting)" || healthText(nil) != "" {
		t.Errorf("healthText")
	}
}

func TestMergeHealthcheck(t *testing.T) {
	img := &dockerspec.DockerOCIImage{}
	img.Config.Healthcheck = &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: 4, StartInterval: time.Millisecond}
	if got := mergeHealthcheck(nil, img); got == nil || got.Test[1] != "true" || got.Interval != time.Second {
		t.Errorf("the image's: %+v", got)
	}
	got := mergeHealthcheck(&container.HealthConfig{Interval: 2 * time.Second}, img)
	if strings.Join(got.Test, " ") != "CMD true" || got.Interval != 2*time.Second || got.Retries != 4 || got.StartInterval != time.Millisecond {
		t.Errorf("merged: %+v", got)
	}
	if got := mergeHealthcheck(&container.HealthConfig{Test: []string{"NONE"}}, img); health.Args(got) != nil {
		t.Errorf("--no-healthcheck: %+v", got)
	}
	if got := mergeHealthcheck(nil, nil); got != nil {
		t.Errorf("none: %+v", got)
	}
}

package daemon

import (
	"bytes"
	"strings"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/runtime"
)

func TestProbeArgs(t *testing.T) {
	for _, tc := range []struct {
		test []string
		want string
	}{
		{nil, ""},
		{[]string{"NONE"}, ""},
		{[]string{"CMD", "wget", "-q", "x"}, "wget -q x"},
		{[]string{"CMD-SHELL", "test -e /ok || exit 1"}, "/bin/sh -c test -e /ok || exit 1"},
	} {
		got := strings.Join(probeArgs(&container.HealthConfig{Test: tc.test}), " ")
		if got != tc.want {
			t.Errorf("%q: %q, want %q", tc.test, got, tc.want)
		}
	}
}

func TestRecordProbe(t *testing.T) {
	p := probe{retries: 2}
	h := &container.Health{Status: container.Starting}
	fail := &container.HealthcheckResult{ExitCode: 1}
	ok := &container.HealthcheckResult{ExitCode: 0}
	if recordProbe(h, fail, p, true) || h.FailingStreak != 0 {
		t.Errorf("a failure in the start period counted: %+v", h)
	}
	if !recordProbe(h, ok, p, true) || h.Status != container.Healthy {
		t.Errorf("success: %+v", h)
	}
	if recordProbe(h, fail, p, false) || h.Status != container.Healthy || h.FailingStreak != 1 {
		t.Errorf("one failure of two retries: %+v", h)
	}
	if !recordProbe(h, fail, p, false) || h.Status != container.Unhealthy {
		t.Errorf("second failure: %+v", h)
	}
	for i := 0; i < 10; i++ {
		recordProbe(h, fail, p, false)
	}
	if len(h.Log) != maxProbeResults {
		t.Errorf("log keeps %d results", len(h.Log))
	}
	if healthText(h) != " (unhealthy)" || healthText(&container.Health{Status: container.Starting}) != " (health: starting)" || healthText(nil) != "" {
		t.Errorf("healthText")
	}
}

func TestProbeOutput(t *testing.T) {
	o := &probeOutput{}
	runtime.WriteFrame(o, runtime.StreamStdout, []byte("out\n"))
	runtime.WriteFrame(o, runtime.StreamStderr, []byte("err\n"))
	if got := o.text(); got != "out\nerr\n" {
		t.Errorf("text: %q", got)
	}
	o = &probeOutput{}
	runtime.WriteFrame(o, runtime.StreamStdout, bytes.Repeat([]byte("x"), 3*maxProbeOutput))
	if got := o.text(); len(got) != maxProbeOutput {
		t.Errorf("long output kept %d bytes", len(got))
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
	if got := mergeHealthcheck(&container.HealthConfig{Test: []string{"NONE"}}, img); probeArgs(got) != nil {
		t.Errorf("--no-healthcheck: %+v", got)
	}
	if got := mergeHealthcheck(nil, nil); got != nil {
		t.Errorf("none: %+v", got)
	}
}

// TestProbeNext: the start interval spaces the probes only in the start
// period and only while the container is still starting.
func TestProbeNext(t *testing.T) {
	p := probe{interval: time.Hour, startInterval: 100 * time.Millisecond, startPeriod: time.Minute}
	for _, tc := range []struct {
		since  time.Duration
		status container.HealthStatus
		want   time.Duration
	}{
		{0, container.Starting, 100 * time.Millisecond},
		{30 * time.Second, container.Starting, 100 * time.Millisecond},
		{30 * time.Second, container.Healthy, time.Hour},
		{30 * time.Second, container.Unhealthy, time.Hour},
		{time.Minute, container.Starting, time.Hour},
	} {
		if got := p.next(tc.since, tc.status); got != tc.want {
			t.Errorf("next(%v, %s) = %v, want %v", tc.since, tc.status, got, tc.want)
		}
	}
	if got := (probe{interval: time.Hour, startInterval: time.Millisecond}).next(0, container.Starting); got != time.Hour {
		t.Errorf("no start period: %v", got)
	}
}

package health

import (
	"bytes"
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/daemon/stream"
	"github.com/lodge-containers/lodge/shim"
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
		got := strings.Join(Args(&container.HealthConfig{Test: tc.test}), " ")
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
}

func TestProbeOutput(t *testing.T) {
	o := &probeOutput{}
	shim.WriteFrame(o, shim.StreamStdout, []byte("out\n"))
	shim.WriteFrame(o, shim.StreamStderr, []byte("err\n"))
	if got := o.text(); got != "out\nerr\n" {
		t.Errorf("text: %q", got)
	}
	o = &probeOutput{}
	shim.WriteFrame(o, shim.StreamStdout, bytes.Repeat([]byte("x"), 3*maxProbeOutput))
	if got := o.text(); len(got) != maxProbeOutput {
		t.Errorf("long output kept %d bytes", len(got))
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

// fakeContainers has one running container with a health; it counts
// the records.
type fakeContainers struct{ records int }

func (f *fakeContainers) Record(id string, fn func(*container.Health) bool) (container.HealthStatus, bool) {
	f.records++
	return container.Starting, true
}

// noExecs refuses every probe, as for a paused container.
type noExecs struct{}

func (noExecs) ExecCreate(context.Context, string, container.ExecCreateRequest) (string, error) {
	return "", context.Canceled
}
func (noExecs) ExecStart(context.Context, string, *[2]uint, stream.Stream) error { return nil }
func (noExecs) ExecInspect(string) (container.ExecInspectResponse, error) {
	return container.ExecInspectResponse{}, nil
}
func (noExecs) Kill(string, syscall.Signal) {}
func (noExecs) Forget(string)               {}

// TestCloseEndsProbes: a health probe loop ends when the daemon's
// lifetime does, without a probe or a record.
func TestCloseEndsProbes(t *testing.T) {
	life, stop := context.WithCancel(context.Background())
	f := &fakeContainers{}
	p := New(life, f, noExecs{})
	done := make(chan struct{})
	go func() {
		p.loop("abababababababab", make(chan struct{}), probe{interval: time.Hour, startInterval: time.Hour, started: time.Now()})
		close(done)
	}()
	stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the probe loop outlived the daemon's lifetime")
	}
	if f.records != 0 {
		t.Errorf("%d records after the shutdown", f.records)
	}
}

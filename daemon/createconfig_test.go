package daemon

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/errdefs"
)

func TestCreateValidationLikeDocker(t *testing.T) {
	for _, tc := range []struct {
		name string
		hc   *container.HostConfig
		h    *container.HealthConfig
		err  string
	}{
		{"tmpfs absolute", &container.HostConfig{Tmpfs: map[string]string{"/run": ""}}, nil, ""},
		{"tmpfs relative", &container.HostConfig{Tmpfs: map[string]string{"run": ""}}, nil, "mount path must be absolute"},
		{"health defaults", &container.HostConfig{}, &container.HealthConfig{Test: []string{"CMD", "true"}}, ""},
		{"health interval 1ms", &container.HostConfig{}, &container.HealthConfig{Interval: time.Millisecond}, ""},
		{"health interval too short", &container.HostConfig{}, &container.HealthConfig{Interval: time.Microsecond}, "Interval in Healthcheck cannot be less than 1ms"},
		{"health timeout negative", &container.HostConfig{}, &container.HealthConfig{Timeout: -time.Second}, "Timeout in Healthcheck cannot be less than 1ms"},
		{"health start period", &container.HostConfig{}, &container.HealthConfig{StartPeriod: 10}, "StartPeriod in Healthcheck"},
		{"health retries negative", &container.HostConfig{}, &container.HealthConfig{Retries: -1}, "Retries in Healthcheck cannot be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateHostConfig(tc.hc)
			if err == nil {
				err = validateHealthcheck(tc.h)
			}
			if tc.err == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err = %v, want an invalid argument saying %q", err, tc.err)
			}
		})
	}
}

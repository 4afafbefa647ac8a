package daemon

import (
	"errors"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/errdefs"
)

func TestSettleLogConfig(t *testing.T) {
	for _, typ := range []string{"", "json-file"} {
		hc := &container.HostConfig{LogConfig: container.LogConfig{Type: typ}}
		if err := settleLogConfig(hc); err != nil || hc.LogConfig.Type != "json-file" {
			t.Errorf("%q: %v, type %q", typ, err, hc.LogConfig.Type)
		}
	}
	hc := &container.HostConfig{LogConfig: container.LogConfig{Type: "syslog"}}
	if err := settleLogConfig(hc); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("syslog: %v, want not implemented", err)
	}
}

package daemon

import (
	"errors"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/errdefs"
)

func TestSettleLogConfig(t *testing.T) {
	for _, typ := range []string{"", "json-file"} {
		hc := &container.HostConfig{LogConfig: container.LogConfig{Type: typ}}
		if w, err := settleLogConfig(hc); err != nil || hc.LogConfig.Type != "json-file" || len(w) != 0 {
			t.Errorf("%q: %v, type %q", typ, err, hc.LogConfig.Type)
		}
	}
	hc := &container.HostConfig{LogConfig: container.LogConfig{Type: "syslog"}}
	if _, err := settleLogConfig(hc); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("syslog: %v, want not implemented", err)
	}
	// Options lodge does not apply are accepted with a warning each.
	hc = &container.HostConfig{LogConfig: container.LogConfig{Config: map[string]string{"max-size": "10m", "max-file": "3"}}}
	w, err := settleLogConfig(hc)
	if err != nil || len(w) != 2 || !strings.Contains(w[0], "max-file") || !strings.Contains(w[1], "max-size") {
		t.Errorf("log options: %v %q", err, w)
	}
}

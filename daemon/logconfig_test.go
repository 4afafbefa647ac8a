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
	// Rotation options are applied; compress is accepted with a warning.
	hc = &container.HostConfig{LogConfig: container.LogConfig{Config: map[string]string{"max-size": "10m", "max-file": "3", "compress": "true"}}}
	w, err := settleLogConfig(hc)
	if err != nil || len(w) != 1 || !strings.Contains(w[0], "compress") {
		t.Errorf("log options: %v %q", err, w)
	}
	for _, tc := range []struct {
		opts map[string]string
		size int64
		n    int
		err  string
	}{
		{map[string]string{"max-size": "10m", "max-file": "3"}, 10_000_000, 3, ""}, // decimal units, as Docker's json-file
		{map[string]string{"max-size": "1k"}, 1000, 1, ""},
		{map[string]string{}, 0, 1, ""},
		{map[string]string{"max-file": "2"}, 0, 0, "max-file cannot be set when max-size is not set"},
		{map[string]string{"max-size": "lots"}, 0, 0, "invalid max-size"},
		{map[string]string{"max-size": "1m", "max-file": "0"}, 0, 0, "max-file cannot be less than 1"},
	} {
		size, n, err := logRotation(tc.opts)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%v: err %v, want %q", tc.opts, err, tc.err)
			}
			continue
		}
		if err != nil || size != tc.size || n != tc.n {
			t.Errorf("%v: %d %d %v, want %d %d", tc.opts, size, n, err, tc.size, tc.n)
		}
	}
	if _, err := settleLogConfig(&container.HostConfig{LogConfig: container.LogConfig{Config: map[string]string{"bogus": "1"}}}); err == nil {
		t.Error("an unknown log option was accepted")
	}
}

func TestLocalAndNoneLogDrivers(t *testing.T) {
	for _, tc := range []struct {
		opts         map[string]string
		size         int64
		files        int
		err, warning string
	}{
		{map[string]string{}, 20 * 1024 * 1024, 5, "", ""}, // Docker's local defaults
		{map[string]string{"max-size": "1k", "max-file": "2"}, 1000, 2, "", ""},
		{map[string]string{"max-file": "3"}, 20 * 1024 * 1024, 3, "", ""}, // no max-size needed
		{map[string]string{"compress": "false"}, 20 * 1024 * 1024, 5, "", "compress"},
		{map[string]string{"compress": "maybe"}, 0, 0, "compress", ""},
		{map[string]string{"labels": "a"}, 0, 0, "unknown log opt 'labels' for local log driver", ""},
		{map[string]string{"max-file": "-1"}, 0, 0, "max file count cannot be less than 0", ""},
	} {
		hc := &container.HostConfig{LogConfig: container.LogConfig{Type: "local", Config: tc.opts}}
		w, err := settleLogConfig(hc)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: %v, want %q", tc.opts, err, tc.err)
			}
			continue
		}
		if err != nil || (tc.warning == "") != (len(w) == 0) || tc.warning != "" && !strings.Contains(w[0], tc.warning) {
			t.Errorf("%v: %v %q", tc.opts, err, w)
		}
		if size, n, _ := rotationFor(hc.LogConfig); size != tc.size || n != tc.files {
			t.Errorf("%v: rotation %d/%d, want %d/%d", tc.opts, size, n, tc.size, tc.files)
		}
		if logFormat(hc.LogConfig) != "local" {
			t.Errorf("%v: format %q", tc.opts, logFormat(hc.LogConfig))
		}
	}
	hc := &container.HostConfig{LogConfig: container.LogConfig{Type: "none"}}
	if w, err := settleLogConfig(hc); err != nil || len(w) != 0 || logFormat(hc.LogConfig) != "none" {
		t.Errorf("none: %v %q", err, w)
	}
}

// TestK8sFileLogDriver: k8s-file takes an absolute path (else writes
// beside the record), rotates as json-file, refuses json-file's other
// options, and inspect shows where its file is.
func TestK8sFileLogDriver(t *testing.T) {
	st := &store{root: "/state/containers"}
	for _, tc := range []struct {
		opts      map[string]string
		file, err string
		size      int64
		files     int
	}{
		{map[string]string{}, "/state/containers/c1/ctr.log", "", 0, 1},
		{map[string]string{"path": "/var/log/pods/x/../p/ctr/0.log"}, "/var/log/pods/p/ctr/0.log", "", 0, 1},
		{map[string]string{"path": "/l/0.log", "max-size": "1k", "max-file": "2"}, "/l/0.log", "", 1000, 2},
		{map[string]string{"path": "ctr/0.log"}, "", "must be absolute", 0, 0},
		{map[string]string{"path": ""}, "", "must be absolute", 0, 0},
		{map[string]string{"tag": "x"}, "", "unknown log opt 'tag' for k8s-file log driver", 0, 0},
		{map[string]string{"max-file": "2"}, "", "max-file cannot be set when max-size is not set", 0, 0},
	} {
		c := &Container{ID: "c1", HostConfig: &container.HostConfig{LogConfig: container.LogConfig{Type: "k8s-file", Config: tc.opts}}}
		w, err := settleLogConfig(c.HostConfig)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%v: %v, want %q", tc.opts, err, tc.err)
			}
			continue
		}
		if err != nil || len(w) != 0 {
			t.Errorf("%v: %v %q", tc.opts, err, w)
		}
		if got := st.inspectLogPath(c); got != tc.file {
			t.Errorf("%v: log path %q, want %q", tc.opts, got, tc.file)
		}
		if size, n, _ := rotationFor(c.HostConfig.LogConfig); size != tc.size || n != tc.files {
			t.Errorf("%v: rotation %d/%d, want %d/%d", tc.opts, size, n, tc.size, tc.files)
		}
		if logFormat(c.HostConfig.LogConfig) != "k8s-file" {
			t.Errorf("%v: format %q", tc.opts, logFormat(c.HostConfig.LogConfig))
		}
	}
}

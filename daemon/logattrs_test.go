package daemon

import (
	"maps"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func TestLogAttrs(t *testing.T) {
	c := &Container{ID: "0123456789abcdef", Name: "web", Path: "sh", Args: []string{"-c", "true"}, ImageID: "sha256:fedcba9876543210",
		Config: &container.Config{Image: "busybox", Labels: map[string]string{"a": "1", "com.x.y": "z", "b": "2"}, Env: []string{"E1=v1", "E2=v=2", "OTHER=o"}},
		HostConfig: &container.HostConfig{LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{
			"labels": "a,missing", "labels-regex": `^com\.`, "env": "E1,NOPE", "env-regex": "^E2$",
			"tag": "{{.Name}} {{.ID}} {{.ImageID}} {{.ImageName}} {{.Command}} {{.DaemonName}}",
		}}}}
	want := map[string]string{"a": "1", "com.x.y": "z", "E1": "v1", "E2": "v=2", "tag": "web 0123456789ab fedcba987654 busybox sh -c true docker"}
	if got := logAttrs(c); !maps.Equal(got, want) {
		t.Errorf("logAttrs = %v, want %v", got, want)
	}
	c.HostConfig.LogConfig = container.LogConfig{Type: "local", Config: map[string]string{"max-size": "1m"}}
	if got := logAttrs(c); got != nil {
		t.Errorf("local driver: %v, want none", got)
	}
	for _, bad := range []map[string]string{{"labels-regex": "("}, {"env-regex": "[z-a]"}, {"tag": "{{.Name"}, {"tag": "{{.Unknown}}"}, {"tag": "{{.Name | nofunc}}"}} {
		if err := checkLogAttrOpts(container.LogConfig{Type: "json-file", Config: bad}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

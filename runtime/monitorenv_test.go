package runtime

import (
	"os"
	"slices"
	"testing"
)

func TestMonitorEnvOneProcUnlessSet(t *testing.T) {
	t.Setenv("_LODGE_STAGE", "daemon")
	t.Setenv("NOTIFY_SOCKET", "/run/notify")
	t.Setenv("GOMAXPROCS", "") // restored after the test
	os.Unsetenv("GOMAXPROCS")
	env := monitorEnv()
	if !slices.Contains(env, "GOMAXPROCS=1") {
		t.Errorf("no GOMAXPROCS=1 in %q", env)
	}
	for _, kv := range env {
		if kv == "_LODGE_STAGE=daemon" || kv == "NOTIFY_SOCKET=/run/notify" {
			t.Errorf("%s passed on to the monitor", kv)
		}
	}

	t.Setenv("GOMAXPROCS", "4")
	env = monitorEnv()
	if slices.Contains(env, "GOMAXPROCS=1") || !slices.Contains(env, "GOMAXPROCS=4") {
		t.Errorf("the daemon's GOMAXPROCS=4 not kept alone: %q", env)
	}
}

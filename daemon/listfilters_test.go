package daemon

import (
	"errors"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/errdefs"
)

func TestPortFilters(t *testing.T) {
	c := &Container{
		Config: &container.Config{ExposedPorts: network.PortSet{
			network.MustParsePort("80/tcp"): {}, network.MustParsePort("53/udp"): {}, network.MustParsePort("9000/tcp"): {}}},
		HostConfig: &container.HostConfig{PortBindings: network.PortMap{network.MustParsePort("80/tcp"): nil}},
	}
	for _, tc := range []struct {
		key, val string
		want     bool
	}{
		{"publish", "80", true},
		{"publish", "70-90/tcp", true},
		{"publish", "9000", false}, // exposed, not published
		{"expose", "9000", true},
		{"expose", "53", false}, // tcp by default
		{"expose", "53/udp", true},
		{"publish", "81", false},
	} {
		if got := portFilterMatch(c, map[string][]string{tc.key: {tc.val}}); got != tc.want {
			t.Errorf("%s=%s: %v", tc.key, tc.val, got)
		}
	}
	c.HostConfig.PublishAllPorts = true
	if !portFilterMatch(c, map[string][]string{"publish": {"9000"}}) {
		t.Errorf("-P publishes the exposed ports")
	}
	if err := validatePortFilters(map[string][]string{"publish": {"x"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad port: %v", err)
	}
	if isTaskMatch(map[string][]string{"is-task": {"true"}}) || !isTaskMatch(map[string][]string{"is-task": {"false"}}) {
		t.Errorf("is-task")
	}
}

func TestNameMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"web", "web", true},
		{"/web", "web", true},
		{"we", "web", true}, // unanchored, as Docker's
		{"^web$", "web", true},
		{"^web$", "web2", false},
		{"^/web$", "web", true},
		{"^test$", "mytest", false},
		{"db-[0-9]+$", "proj-db-12", true},
		{"[", "web", false}, // does not compile: only itself
		{"[", "[", true},
	} {
		if got := nameMatch(tc.pattern, tc.name); got != tc.want {
			t.Errorf("nameMatch(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

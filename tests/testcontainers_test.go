package tests

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestGoClientTestcontainersFlow: what testcontainers-go does through the
// Go client works: an exposed port bound to host port "" or "0" gets a
// free port that inspect shows and that answers; a container created with
// one user network in its networking config is on that network only,
// with an address; an anchored name filter finds it; a label filter on
// the event stream lets its events through.
func TestGoClientTestcontainersFlow(t *testing.T) {
	s, docker := compatSession(t)
	flow := staticTool(t, "tcflow")
	for _, hostPort := range []string{"", "0"} {
		t.Run("HostPort="+hostPort, func(t *testing.T) {
			r := s.run(flow, hostPort)
			var got struct {
				HostPort, Body, IP, LabelEvent string
				Networks, ByName, Errors       []string
				ByShortName                    int
			}
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 {
				t.Fatalf("tcflow: %v\n%s", err, r)
			}
			if len(got.Errors) > 0 {
				t.Errorf("errors: %q", got.Errors)
			}
			if got.HostPort == "" || got.HostPort == "0" || got.Body != "from-tc\n" {
				t.Errorf("host port %q answered %q", got.HostPort, got.Body)
			}
			if strings.Join(got.Networks, " ") != "tc-net" || got.IP == "" {
				t.Errorf("networks %v, IP on tc-net %q", got.Networks, got.IP)
			}
			if strings.Join(got.ByName, " ") != "/tc-web" || got.ByShortName != 0 {
				t.Errorf("name=^tc-web$ listed %v; ^tc-we$ listed %d", got.ByName, got.ByShortName)
			}
			if got.LabelEvent != "create" {
				t.Errorf("first event through the label filter: %q", got.LabelEvent)
			}
		})
	}
	if out := s.must(docker, "ps", "-aq").stdout; out != "" {
		t.Errorf("tcflow left containers: %q", out)
	}
}

package tests

import (
	"strconv"
	"testing"
	"time"
)

// docker events tells of networks as Docker does: create, a container's
// connect when it starts and disconnect when it stops (naming the
// container), destroy.
func TestNetworkEvents(t *testing.T) {
	s, docker := containerSession(t)
	since := strconv.FormatInt(time.Now().Unix()-1, 10)
	s.must(docker, "network", "create", "evnet")
	s.must(docker, "run", "--rm", "--name", "evc", "--network", "evnet", "busybox", "true")
	s.must(docker, "network", "rm", "evnet")
	until := strconv.FormatInt(time.Now().Unix()+1, 10)
	r := s.must(docker, "events", "--since", since, "--until", until, "--filter", "type=network",
		"--format", "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.type}} {{with .Actor.Attributes.container}}{{len .}}{{else}}0{{end}}")
	want := "create evnet bridge 0\nconnect evnet bridge 64\ndisconnect evnet bridge 64\ndestroy evnet bridge 0\n"
	if r.stdout != want {
		t.Errorf("network events:\n%s\nwant:\n%s", r.stdout, want)
	}
}

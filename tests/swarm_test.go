package tests

import (
	"strings"
	"testing"
)

// TestNoSwarm: lodge is in no swarm and says so as Docker does on such a
// node (503), which clients such as docker-py's clean-up rely on.
func TestNoSwarm(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	docker := needDocker(t)
	s := newSession(t, u)
	s.start()
	if r := s.must(docker, "info", "--format", "{{.Swarm.LocalNodeState}}"); strings.TrimSpace(r.stdout) != "inactive" {
		t.Errorf("Swarm.LocalNodeState: %s", r)
	}
	if r := s.run(docker, "node", "ls"); r.code == 0 || !strings.Contains(r.stderr, "This node is not a swarm manager") {
		t.Errorf("docker node ls: %s", r)
	}
	if r := s.run(docker, "swarm", "leave", "--force"); r.code == 0 || !strings.Contains(r.stderr, "not part of a swarm") {
		t.Errorf("docker swarm leave: %s", r)
	}
}

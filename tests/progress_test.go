package tests

import (
	"regexp"
	"testing"
)

// The docker CLI prints a pull's and a push's JSON progress stream as
// lines, one per layer state: what a user (and a script) reads to see
// that every layer came or went. api writes that stream for the image
// service (issue 19 moved it there); a message without its layer's ID, or
// without push's digest, shows here.
func TestProgressLinesAsDockerPrintsThem(t *testing.T) {
	s, docker := containerSession(t)
	repo := startRegistry(t, "", "") + "/team/progress"
	s.must(docker, "tag", "busybox", repo)
	push := s.must(docker, "push", repo).stdout
	for _, re := range []string{
		`(?m)^The push refers to repository \[` + regexp.QuoteMeta(repo) + `\]$`,
		`(?m)^[0-9a-f]{12}: Pushed$`,
		`(?m)^latest: digest: sha256:[0-9a-f]{64} size: [0-9]+$`,
	} {
		if !regexp.MustCompile(re).MatchString(push) {
			t.Errorf("push output has no line matching %s:\n%s", re, push)
		}
	}
	// Both names go, so the layer goes and the pull downloads it.
	s.must(docker, "rmi", repo, "busybox")
	pull := s.must(docker, "pull", repo).stdout
	for _, re := range []string{
		`(?m)^latest: Pulling from team/progress$`,
		`(?m)^[0-9a-f]{12}: Pull complete$`,
		`(?m)^Digest: sha256:[0-9a-f]{64}$`,
		`(?m)^Status: Downloaded newer image for ` + regexp.QuoteMeta(repo) + `:latest$`,
	} {
		if !regexp.MustCompile(re).MatchString(pull) {
			t.Errorf("pull output has no line matching %s:\n%s", re, pull)
		}
	}
}

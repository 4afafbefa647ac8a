package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// timing matches what changes from one second to the next in a listing:
// "Up 3 seconds", "4 minutes ago", "About an hour ago".
var timing = regexp.MustCompile(`(\d+|About an?|Less than a) (second|minute|hour|day|week|month|year)s?( ago)?`)

// normaliseTiming blanks the timing columns and, because their widths
// move the columns after them, collapses runs of spaces.
func normaliseTiming(s string) string {
	s = timing.ReplaceAllString(s, "<time>")
	return regexp.MustCompile(`  +`).ReplaceAllString(s, "  ")
}

// versionSkew removes key from each line that is a JSON object. The docker
// CLI here is 28; lodge prints with docker/cli 29's formatter, which adds
// a container's HealthStatus and no longer prints an image's VirtualSize
// (deprecated since API 1.43): those two keys are docker's own change
// between the versions, not lodge's.
func versionSkew(out, key string) string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		var m map[string]any
		if !strings.HasPrefix(l, "{") || json.Unmarshal([]byte(l), &m) != nil {
			continue
		}
		delete(m, key)
		b, _ := json.Marshal(m)
		lines[i] = string(b)
	}
	return strings.Join(lines, "\n")
}

// TestListOutputMatchesDocker: lodge ps, images, volume ls and network ls
// print what the docker CLI prints against the same daemon, with and
// without --format (table, json, Go templates), --no-trunc, --quiet,
// filters, and the formats the user set in the docker config.
func TestListOutputMatchesDocker(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "tag", "busybox", "busybox:v2")
	s.must(docker, "run", "-d", "--name", "web", "-p", "127.0.0.1:18931:80", "--label", "tier=front", "-v", "vol10:/data", "busybox", "sleep", "120")
	if r := s.run(docker, "run", "--name", "done", "--label", "tier=back", "busybox:v2", "sh", "-c", "exit 3"); r.code != 3 {
		t.Fatalf("run done: %s", r)
	}
	// A second image, under a registry's name. (Not a second repository
	// for the same image: docker prints an image's repositories in Go map
	// order, differently from one run to the next.)
	s.must(docker, "commit", "done", "127.0.0.1:5999/team/busybox:1.0")
	s.must(docker, "volume", "create", "--label", "keep=yes", "vol2")
	s.must(docker, "volume", "create", "vol1")
	s.must(docker, "network", "create", "--label", "team=a", "net10")
	s.must(docker, "network", "create", "--internal", "net2")
	t.Cleanup(func() { s.run(docker, "rm", "-f", "web") })

	cases := [][]string{
		{"ps"}, {"ps", "-a"}, {"ps", "-aq"}, {"ps", "-a", "--no-trunc"}, {"ps", "-n", "1"}, {"ps", "-l", "-q"},
		{"ps", "-a", "--format", "{{json .}}"}, {"ps", "-a", "--format", "json"},
		{"ps", "-a", "--format", "table {{.Names}}\t{{.Image}}\t{{.Ports}}\t{{.Label \"tier\"}}"},
		{"ps", "-a", "--format", "{{.ID}} {{.Names}} {{.State}} {{.Mounts}}"},
		{"ps", "-a", "-f", "label=tier=back"}, {"ps", "-a", "-f", "status=exited", "--format", "{{.Names}} {{.Status}}"},
		{"images"}, {"images", "-q"}, {"images", "--no-trunc"}, {"images", "--digests"}, {"images", "busybox"},
		{"images", "--format", "{{json .}}"}, {"images", "--format", "table {{.Repository}}:{{.Tag}}\t{{.ID}}\t{{.Size}}"},
		{"images", "-f", "reference=127.0.0.1:5999/*/*"},
		{"volume", "ls"}, {"volume", "ls", "-q"}, {"volume", "ls", "--format", "{{json .}}"},
		{"volume", "ls", "--format", "table {{.Name}}\t{{.Mountpoint}}\t{{.Labels}}"}, {"volume", "ls", "-f", "label=keep"},
		{"network", "ls"}, {"network", "ls", "-q"}, {"network", "ls", "--no-trunc"}, {"network", "ls", "--format", "{{json .}}"},
		{"network", "ls", "--format", "table {{.Name}}\t{{.Driver}}\t{{.Internal}}\t{{.Labels}}"}, {"network", "ls", "-f", "name=net1"},
	}
	compare := func(args []string) {
		t.Helper()
		want := s.run(docker, args...)
		got := s.run("lodge", args...)
		if got.code != want.code || normaliseTiming(versionSkew(got.stdout, "HealthStatus")) != normaliseTiming(versionSkew(want.stdout, "VirtualSize")) {
			t.Errorf("lodge %s differs from docker's:\n--- docker (exit %d):\n%s--- lodge (exit %d):\n%s%s", strings.Join(args, " "), want.code, want.stdout, got.code, got.stdout, got.stderr)
		}
	}
	for _, args := range cases {
		compare(args)
	}

	// The formats a user set for docker are lodge's too.
	cfg := filepath.Join(s.home, ".docker", "config.json")
	os.MkdirAll(filepath.Dir(cfg), 0o700)
	if err := os.WriteFile(cfg, []byte(`{"psFormat": "table {{.Names}}\t{{.Status}}", "imagesFormat": "{{.Repository}} {{.Tag}}", "volumesFormat": "{{.Name}}!", "networksFormat": "table {{.Name}}"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chown(filepath.Dir(cfg), s.u.uid, s.u.gid)
	os.Chown(cfg, s.u.uid, s.u.gid)
	for _, args := range [][]string{{"ps", "-a"}, {"ps", "-aq"}, {"images"}, {"volume", "ls"}, {"network", "ls"}} {
		compare(args)
	}
}

// TestPullOutputMatchesDocker: lodge pull prints what docker pull prints
// when its output is not a terminal (the progress lines, the default-tag
// note, the full reference at the end; -q only the reference).
func TestPullOutputMatchesDocker(t *testing.T) {
	s, docker := containerSession(t)
	repo := startRegistry(t, "", "") + "/team/bb"
	s.must(docker, "tag", "busybox", repo) // :latest
	s.must(docker, "push", repo)
	for _, args := range [][]string{{"pull", repo}, {"pull", repo + ":latest"}, {"pull", "-q", repo}} {
		s.must(docker, "rmi", repo)
		want := s.run(docker, args...)
		s.must(docker, "rmi", repo)
		got := s.run("lodge", args...)
		if got.code != 0 || got.stdout != want.stdout {
			t.Errorf("lodge %s differs from docker's:\n--- docker (exit %d):\n%s--- lodge (exit %d):\n%s%s", strings.Join(args, " "), want.code, want.stdout, got.code, got.stdout, got.stderr)
		}
	}
}

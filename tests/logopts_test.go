package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogRotation: --log-opt max-size/max-file rotate the json-file log as
// Docker's driver does: no file grows past max-size, at most max-file are
// kept, and docker logs reads across the kept files, oldest first.
// Options lodge does not apply are not a silent success, and another log
// driver is refused.
func TestLogRotation(t *testing.T) {
	s, docker := containerSession(t)
	id := strings.TrimSpace(s.must(docker, "run", "-d", "--log-opt", "max-size=10k", "--log-opt", "max-file=3", "busybox",
		"sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done").stdout)
	s.must(docker, "wait", id)
	logPath := strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.LogPath}}", id).stdout)
	files, _ := filepath.Glob(logPath + "*")
	if len(files) != 3 {
		t.Errorf("log files %v, want 3 (max-file=3)", files)
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.Size() > 10*1000 {
			t.Errorf("%s: %v, larger than max-size", f, err)
		}
	}
	out := s.must(docker, "logs", id).stdout
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[len(lines)-1] != "line-1999" {
		t.Errorf("docker logs ends with %q, want line-1999", lines[len(lines)-1])
	}
	if strings.Contains(out, "line-0\n") {
		t.Error("the oldest lines were kept past max-file")
	}
	for i := 1; i < len(lines); i++ { // consecutive across the files
		var a, b int
		fmt.Sscanf(lines[i-1], "line-%d", &a)
		fmt.Sscanf(lines[i], "line-%d", &b)
		if b != a+1 {
			t.Fatalf("docker logs out of order at %q then %q", lines[i-1], lines[i])
		}
	}
	s.must(docker, "rm", id)

	r := s.must(docker, "run", "--rm", "--log-opt", "compress=true", "busybox", "echo", "logged")
	if r.stdout != "logged\n" || !strings.Contains(r.stderr, "log option compress is not applied") {
		t.Errorf("run with --log-opt compress: %s", r)
	}
	if r := s.run(docker, "run", "--rm", "--log-opt", "max-file=2", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "max-size is not set") {
		t.Errorf("max-file without max-size: %s", r)
	}
	if r := s.run(docker, "run", "--rm", "--log-driver", "syslog", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, `log driver "syslog"`) {
		t.Errorf("run with --log-driver syslog: %s", r)
	}
}

// TestLogDetailsAttributes: json-file's labels, env and tag options give
// the log's lines attributes, which docker logs --details puts before
// each line as Docker does (sorted, query-escaped); a bad regexp is
// refused at create.
func TestLogDetailsAttributes(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "run", "--name", "attrs", "--label", "team=core ops", "--label", "com.example.tier=web", "--label", "other=x",
		"-e", "STAGE=dev", "-e", "REGION=eu=1",
		"--log-opt", "labels=team,absent", "--log-opt", "labels-regex=^com\\.", "--log-opt", "env=STAGE",
		"--log-opt", "env-regex=^REG", "--log-opt", "tag={{.Name}}/{{.ImageName}}",
		"busybox", "echo", "hello")
	want := "REGION=eu%3D1,STAGE=dev,com.example.tier=web,tag=attrs%2Fbusybox,team=core+ops hello\n"
	if r := s.must(docker, "logs", "--details", "attrs"); r.stdout != want {
		t.Errorf("logs --details: %q, want %q", r.stdout, want)
	}
	if r := s.must(docker, "logs", "attrs"); r.stdout != "hello\n" {
		t.Errorf("logs without --details: %q", r.stdout)
	}
	s.must(docker, "rm", "attrs")
	if r := s.run(docker, "create", "--log-opt", "env-regex=(", "busybox"); r.code == 0 || !strings.Contains(r.stderr, "env-regex") {
		t.Errorf("create with a bad env-regex: %s", r)
	}
}

package tests

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// apiMessage is the message of a Docker error body, or the body itself.
func apiMessage(body string) string {
	var e struct{ Message string }
	if json.Unmarshal([]byte(body), &e) == nil && e.Message != "" {
		return e.Message
	}
	return body
}

// TestFidelityCreateValidation: create refuses what Docker refuses, with
// Docker's status and words, before anything is made — and a refusal that
// is not about a missing image is never a 404 the docker CLI would pull on.
func TestFidelityCreateValidation(t *testing.T) {
	s, docker := containerSession(t)
	const create = "/v1.51/containers/create"
	for _, tc := range []struct {
		name, query, body string
		code              int
		msg               string
	}{
		{"empty annotation key", "", `{"Image":"busybox","HostConfig":{"Annotations":{"":"x"}}}`,
			400, "invalid Annotations: the empty string is not permitted as an annotation key"},
		{"link to a missing container", "", `{"Image":"busybox","HostConfig":{"Links":["nosuch:alias"]}}`,
			400, "could not get container for nosuch: No such container: nosuch"},
		{"reference with a digest for a tag", "", `{"Image":"busybox:sha256:0123456789012345678901234567890123456789012345678901234567890123"}`,
			400, "invalid reference format"},
		{"pid of a missing container", "", `{"Image":"busybox","HostConfig":{"PidMode":"container:nosuch"}}`,
			400, "No such container: nosuch"},
		{"ipc of a missing container", "", `{"Image":"busybox","HostConfig":{"IpcMode":"container:nosuch"}}`,
			400, "No such container: nosuch"},
		{"platform of another image", "?platform=linux/arm64", `{"Image":"busybox"}`,
			404, "image with reference busybox was found but its platform (linux/amd64) does not match the specified platform (linux/arm64)"},
	} {
		code, body := s.apiCall(t, "POST", create+tc.query, "application/json", tc.body)
		if code != tc.code || !strings.Contains(apiMessage(body), tc.msg) {
			t.Errorf("%s: %d %s; want %d %q", tc.name, code, body, tc.code, tc.msg)
		}
	}
	if r := s.run(docker, "create", "--link", "nosuch:alias", "busybox"); r.code == 0 || !strings.Contains(r.stderr, "could not get container for nosuch") || strings.Contains(r.stderr, "Unable to find image") {
		t.Errorf("docker create --link nosuch:alias: %s", r)
	}
	if out := s.must(docker, "ps", "-aq").stdout; out != "" {
		t.Errorf("refused creates left containers:\n%s", out)
	}
}

// TestFidelityJSONBodies: a request body that is not JSON, or JSON with
// something after it, is a 400 with Docker's words, found before the
// container the route names is looked up.
func TestFidelityJSONBodies(t *testing.T) {
	s, _ := containerSession(t)
	for _, tc := range []struct {
		name, path, ct, body, msg string
	}{
		{"text body", "/v1.51/containers/create", "text/plain", `{"Image":"busybox"}`, "unsupported Content-Type header (text/plain): must be 'application/json'"},
		{"trailing content", "/v1.51/containers/create", "application/json", `{"Image":"busybox"} {}`, "unexpected content after JSON"},
		{"invalid JSON", "/v1.51/containers/create", "application/json", `{"Image":`, "invalid JSON"},
		{"update of a missing container", "/v1.51/containers/nosuch/update", "application/json", `{"Memory":`, "invalid JSON"},
		{"exec in a missing container", "/v1.51/containers/nosuch/exec", "text/plain", `{}`, "unsupported Content-Type header"},
		{"connect to a missing network", "/v1.51/networks/nosuch/connect", "application/json", `{"Container":"x"} x`, "unexpected content after JSON"},
	} {
		code, body := s.apiCall(t, "POST", tc.path, tc.ct, tc.body)
		if code != 400 || !strings.Contains(apiMessage(body), tc.msg) {
			t.Errorf("%s: %d %s; want 400 %q", tc.name, code, body, tc.msg)
		}
	}
}

// TestFidelityResize: sizes out of range are 400, and an exec that has
// ended cannot be resized (409, not a 500).
func TestFidelityResize(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "run", "-d", "-t", "--name", "tty", "busybox", "sleep", "300")
	for _, q := range []string{"h=4294967296&w=80", "h=-1&w=80", "h=24&w=x"} {
		code, body := s.apiCall(t, "POST", "/v1.51/containers/tty/resize?"+q, "", "")
		if code != 400 || !strings.Contains(apiMessage(body), "invalid resize") {
			t.Errorf("resize ?%s: %d %s", q, code, body)
		}
	}
	if code, body := s.apiCall(t, "POST", "/v1.51/containers/tty/resize?h=30&w=100", "", ""); code != 200 {
		t.Errorf("resize 30x100: %d %s", code, body)
	}
	code, body := s.apiCall(t, "POST", "/v1.51/containers/tty/exec", "application/json", `{"Cmd":["true"],"Tty":true}`)
	var ex struct{ Id string }
	if code != 201 || json.Unmarshal([]byte(body), &ex) != nil {
		t.Fatalf("exec create: %d %s", code, body)
	}
	if code, body := s.apiCall(t, "POST", "/v1.51/exec/"+ex.Id+"/start", "application/json", `{"Detach":true,"Tty":true}`); code != 200 {
		t.Fatalf("exec start: %d %s", code, body)
	}
	waitFor(t, 10*time.Second, func() bool {
		_, body := s.apiCall(t, "GET", "/v1.51/exec/"+ex.Id+"/json", "", "")
		return strings.Contains(body, `"Running":false`)
	})
	if code, body := s.apiCall(t, "POST", "/v1.51/exec/"+ex.Id+"/resize?h=30&w=100", "", ""); code != 409 || !strings.Contains(apiMessage(body), "is not running") {
		t.Errorf("resize of an ended exec: %d %s", code, body)
	}
	if code, body := s.apiCall(t, "POST", "/v1.51/exec/"+ex.Id+"/resize?h=99999999999&w=100", "", ""); code != 400 {
		t.Errorf("resize of an exec out of range: %d %s", code, body)
	}
	s.must(docker, "rm", "-f", "tty")
}

// TestFidelityLogDrivers: --log-driver local writes Docker's local format
// (protobuf entries framed by their lengths) and rotates it, docker logs
// reads it back across the kept files; --log-driver none keeps nothing
// and docker logs says so as Docker does.
func TestFidelityLogDrivers(t *testing.T) {
	s, docker := containerSession(t)
	id := strings.TrimSpace(s.must(docker, "run", "-d", "--log-driver", "local", "--log-opt", "max-size=10k", "--log-opt", "max-file=3", "busybox",
		"sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done").stdout)
	s.must(docker, "wait", id)
	if typ := s.must(docker, "inspect", "-f", "{{.HostConfig.LogConfig.Type}}", id).stdout; typ != "local\n" {
		t.Errorf("LogConfig.Type %q", typ)
	}
	// Docker keeps the local driver's files out of its API.
	if lp := s.must(docker, "inspect", "-f", "{{.LogPath}}", id).stdout; lp != "\n" {
		t.Errorf("LogPath of a local log: %q", lp)
	}
	dir := filepath.Dir(strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.HostsPath}}", id).stdout))
	live := filepath.Join(dir, "local-logs", "container.log")
	files, _ := filepath.Glob(live + "*")
	if len(files) != 3 {
		t.Errorf("local log files %v, want 3 (max-file=3)", files)
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.Size() > 10*1000 {
			t.Errorf("%s: %v, larger than max-size", f, err)
		}
	}
	b, err := os.ReadFile(live)
	if err != nil || len(b) < 8 {
		t.Fatalf("the live local log: %v", err)
	}
	// The first frame: its length before and after a protobuf LogEntry
	// whose first field is the source (field 1, bytes).
	n := int(binary.BigEndian.Uint32(b))
	if len(b) < n+8 || binary.BigEndian.Uint32(b[4+n:]) != uint32(n) || b[4] != 0x0a || bytes.Contains(b, []byte(`"log":`)) {
		t.Errorf("the live log is not in the local format: % x", b[:min(len(b), 32)])
	}
	out := s.must(docker, "logs", id)
	lines := strings.Split(strings.TrimSpace(out.stdout), "\n")
	if lines[len(lines)-1] != "line-1999" || strings.Contains(out.stdout, "line-0\n") {
		t.Errorf("docker logs of a local log ends %q", lines[len(lines)-1])
	}
	for i := 1; i < len(lines); i++ {
		var a, b int
		fmt.Sscanf(lines[i-1], "line-%d", &a)
		fmt.Sscanf(lines[i], "line-%d", &b)
		if b != a+1 {
			t.Fatalf("docker logs out of order at %q then %q", lines[i-1], lines[i])
		}
	}
	if tail := s.must(docker, "logs", "--tail", "2", "-t", id).stdout; !strings.HasSuffix(tail, " line-1999\n") || strings.Count(tail, "\n") != 2 || !strings.HasPrefix(tail, "20") {
		t.Errorf("docker logs --tail 2 -t: %q", tail)
	}
	// Each stream keeps its own: stderr comes back on stderr.
	s.must(docker, "run", "--name", "both", "--log-driver", "local", "busybox", "sh", "-c", "echo out; echo err >&2")
	if r := s.must(docker, "logs", "both"); r.stdout != "out\n" || r.stderr != "err\n" {
		t.Errorf("docker logs of stdout and stderr in a local log: %s", r)
	}
	if r := s.run(docker, "run", "--rm", "--log-driver", "local", "--log-opt", "labels=x", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "unknown log opt 'labels' for local log driver") {
		t.Errorf("local with labels: %s", r)
	}

	s.must(docker, "run", "--name", "quiet", "--log-driver", "none", "busybox", "echo", "unseen")
	if r := s.run(docker, "logs", "quiet"); r.code == 0 || !strings.Contains(r.stderr, "configured logging driver does not support reading") {
		t.Errorf("docker logs of a none container: %s", r)
	}
	s.must(docker, "rm", id, "quiet", "both")
}

package tests

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criRecord is one record of the CRI log format as the kubelet parses it.
var criRecord = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z) (stdout|stderr) ([PF]) (.*)$`)

// criRecords reads a CRI-format log file as "stream tag content" strings,
// failing the test on a line that is not a record.
func criRecords(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" && len(b) == 0 {
			break
		}
		m := criRecord.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("%s: not a CRI log record: %q", path, line)
		}
		if _, err := time.Parse(time.RFC3339Nano, m[1]); err != nil {
			t.Errorf("%s: record time %q: %v", path, m[1], err)
		}
		out = append(out, m[2]+" "+m[3]+" "+m[4])
	}
	return out
}

// waitRecords waits until the log at path holds want among its records
// (in order, others between allowed) and returns them all.
func waitRecords(t *testing.T, path string, want ...string) []string {
	t.Helper()
	var got []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(path); err != nil {
			continue
		}
		got = criRecords(t, path)
		if hasInOrder(got, want) {
			return got
		}
	}
	t.Fatalf("%s: records %q, want %q among them", path, got, want)
	return nil
}

// criLines joins each stream's partial (P) records to the record that
// ends their line, as the kubelet does, and returns the lines as
// "stream text".
func criLines(recs []string) []string {
	var out []string
	pending := map[string]string{}
	for _, r := range recs {
		stream, rest, _ := strings.Cut(r, " ")
		tag, text, _ := strings.Cut(rest, " ")
		pending[stream] += text
		if tag == "F" {
			out = append(out, stream+" "+pending[stream])
			delete(pending, stream)
		}
	}
	return out
}

func hasInOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// criClientAsUser is a CRI runtime client on the session's socket,
// connected as its user (lodged's CRI answers only its owner, and the
// tests run as root).
func criClientAsUser(t *testing.T, s *session) runtimeapi.RuntimeServiceClient {
	t.Helper()
	sock := filepath.Join(s.runDir, "cri.sock")
	conn, err := grpc.NewClient("passthrough:///cri", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) { return s.dialUnixAsUser(sock) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return runtimeapi.NewRuntimeServiceClient(conn)
}

const criLogsPod = `{
  "metadata": {"name": "logs", "namespace": "default", "uid": "crilogs-uid-1", "attempt": 0},
  "log_directory": %q
}`

// criLogsCtr writes on both streams, a line in two writes, then more
// output at each of three signals (files made through exec).
const criLogsCtr = `{
  "metadata": {"name": "talk", "attempt": 0},
  "image": {"image": "busybox:latest"},
  "command": ["sh", "-c", "echo out-1; echo err-1 >&2; printf part; sleep 0.3; echo ial; until [ -e /tmp/a ]; do sleep 0.1; done; echo follow-1; until [ -e /tmp/b ]; do sleep 0.1; done; echo after-reopen; echo err-after >&2; until [ -e /tmp/c ]; do sleep 0.1; done; echo after-crictl-reopen; exec sleep 600"],
  "log_path": "talk/0.log"
}`

// TestCRILogs: a CRI container's output lands at the kubelet's log path
// in the CRI format, crictl logs (which reads the file itself) shows it
// and follows it, and after the kubelet's rotation (rename, then
// ReopenContainerLog) new output lands in a fresh file at the path.
func TestCRILogs(t *testing.T) {
	s, docker := compatSession(t)
	cc, ccRun := crictlFor(t, s)
	logDir := filepath.Join(s.home, "crilogs", "default_logs_crilogs-uid-1") // not there yet: lodge makes it
	dir := s.buildDir("crilogs", map[string]string{
		"pod.json": fmt.Sprintf(criLogsPod, logDir),
		"ctr.json": criLogsCtr,
	})
	podJSON := filepath.Join(dir, "pod.json")
	pod := strings.TrimSpace(cc("runp", podJSON))
	t.Cleanup(func() { ccRun("stopp", pod); ccRun("rmp", pod) })
	ctr := strings.TrimSpace(cc("create", pod, filepath.Join(dir, "ctr.json"), podJSON))
	cc("start", ctr)
	path := filepath.Join(logDir, "talk", "0.log")

	got := waitRecords(t, path, "stdout F out-1", "stdout P part", "stdout F ial")
	if !hasInOrder(got, []string{"stderr F err-1"}) || len(got) != 4 {
		t.Errorf("records %q, want out-1, err-1 and the line in two parts", got)
	}
	if out := cc("inspect", "-o", "json", ctr); !strings.Contains(out, `"logPath": "`+path+`"`) {
		t.Errorf("crictl inspect: the log path is not %s:\n%s", path, out)
	}
	// crictl reads the file, joining the partial record to its line.
	if r := ccRun("logs", ctr); r.code != 0 || r.stdout != "out-1\npartial\n" || !strings.HasSuffix(r.stderr, "\nerr-1\n") {
		t.Errorf("crictl logs: %s", r)
	}
	// Its tail counts the file's records, as the kubelet's does.
	if r := ccRun("logs", "--tail", "1", ctr); r.code != 0 || r.stdout != "ial\n" {
		t.Errorf("crictl logs --tail 1: %s", r)
	}
	// docker logs reads the same file.
	name := "k8s_talk_logs_default_crilogs-uid-1_0"
	if r := s.must(docker, "logs", name); r.stdout != "out-1\npartial\n" || r.stderr != "err-1\n" {
		t.Errorf("docker logs of the CRI container: %s", r)
	}

	// crictl logs -f follows the file.
	follow := s.background(s.home, clientBinary(t, "crictl"), "--runtime-endpoint", "unix://"+filepath.Join(s.runDir, "cri.sock"), "logs", "-f", ctr)
	cc("exec", "-s", ctr, "touch", "/tmp/a")
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(follow.output(), "follow-1") && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if out := follow.output(); !strings.Contains(out, "out-1\n") || !strings.Contains(out, "follow-1\n") {
		t.Errorf("crictl logs -f: %q", out)
	}
	follow.stop()

	// The kubelet's rotation: rename, then reopen.
	rotated := path + ".20261201-000000"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	rt := criClientAsUser(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := rt.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: ctr}); err != nil {
		t.Fatalf("ReopenContainerLog: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Errorf("after ReopenContainerLog: %v (want a fresh, empty file at the path)", err)
	}
	cc("exec", "-s", ctr, "touch", "/tmp/b")
	got = waitRecords(t, path, "stdout F after-reopen")
	got = waitRecords(t, path, "stderr F err-after")
	if len(got) != 2 {
		t.Errorf("the reopened file: %q, want only what came after", got)
	}
	if old := criRecords(t, rotated); len(old) != 5 || old[4] != "stdout F follow-1" {
		t.Errorf("the rotated file: %q, want what came before the reopen", old)
	}
	if r := ccRun("logs", ctr); r.code != 0 || r.stdout != "after-reopen\n" || !strings.HasSuffix(r.stderr, "\nerr-after\n") || strings.Contains(r.stderr, "err-1") {
		t.Errorf("crictl logs after the rotation: %s", r)
	}

	// crictl's own way to ask for it: logs --reopen.
	if err := os.Rename(path, rotated+"-2"); err != nil {
		t.Fatal(err)
	}
	cc("logs", "--reopen", ctr)
	cc("exec", "-s", ctr, "touch", "/tmp/c")
	if got = waitRecords(t, path, "stdout F after-crictl-reopen"); len(got) != 1 {
		t.Errorf("the file after crictl logs --reopen: %q", got)
	}

	cc("stop", "--timeout", "1", ctr)
	if r := ccRun("logs", "--reopen", ctr); r.code == 0 {
		t.Errorf("crictl logs --reopen of a stopped container succeeded: %s", r)
	}
	_, err := rt.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: ctr})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "not running") {
		t.Errorf("ReopenContainerLog of a stopped container: %v, want FailedPrecondition", err)
	}
}

// TestDockerK8sFileLog: the k8s-file log driver through the docker CLI:
// the CRI format at the container's LogPath or the path asked, read by
// docker logs with its options.
func TestDockerK8sFileLog(t *testing.T) {
	s, docker := compatSession(t)
	s.must(docker, "run", "--name", "klog", "--log-driver", "k8s-file", "busybox", "sh", "-c", "echo one; echo two >&2; sleep 0.2; printf thr; sleep 0.2; echo ee; printf four")
	insp := strings.Fields(s.must(docker, "inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{.LogPath}}", "klog").stdout)
	if len(insp) != 2 || insp[0] != "k8s-file" || !filepath.IsAbs(insp[1]) {
		t.Fatalf("inspect: %q, want k8s-file and the log's path", insp)
	}
	recs := criRecords(t, insp[1])
	want := []string{"stdout F one", "stderr F two", "stdout P thr", "stdout F ee", "stdout P four"}
	if !hasInOrder(recs, []string{"stdout F one", "stdout P thr", "stdout F ee", "stdout P four"}) || !hasInOrder(recs, []string{"stderr F two"}) || len(recs) != len(want) {
		t.Errorf("records %q, want %q", recs, want)
	}
	if r := s.must(docker, "logs", "klog"); r.stdout != "one\nthree\nfour" || r.stderr != "two\n" {
		t.Errorf("docker logs: %s", r)
	}
	if r := s.must(docker, "logs", "--tail", "2", "klog"); r.stdout != "three\nfour" || r.stderr != "" {
		t.Errorf("docker logs --tail 2: %s", r)
	}
	ts := s.must(docker, "logs", "--timestamps", "klog").stdout
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z one\n\S+Z three\n\S+Z four$`).MatchString(ts) {
		t.Errorf("docker logs --timestamps: %q", ts)
	}
	if r := s.must(docker, "logs", "--since", "2000-01-01T00:00:00Z", "--until", "2000-01-02T00:00:00Z", "klog"); r.stdout != "" || r.stderr != "" {
		t.Errorf("docker logs --since/--until a day in 2000: %s", r)
	}

	// A path of the user's, in a directory not there yet; -f follows.
	logFile := filepath.Join(s.home, "k8slogs", "sub", "c.log")
	s.must(docker, "run", "-d", "--name", "klog2", "--log-driver", "k8s-file", "--log-opt", "path="+logFile, "busybox", "sh", "-c", "echo a; sleep 1; echo b")
	if r := s.must(docker, "logs", "-f", "klog2"); r.stdout != "a\nb\n" {
		t.Errorf("docker logs -f: %s", r)
	}
	if recs := criRecords(t, logFile); strings.Join(recs, "|") != "stdout F a|stdout F b" {
		t.Errorf("%s: %q", logFile, recs)
	}
	if out := strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.LogPath}}", "klog2").stdout); out != logFile {
		t.Errorf("inspect LogPath %q, want %q", out, logFile)
	}
	// A tty's output is stdout.
	s.must(docker, "run", "--name", "klog3", "-t", "--log-driver", "k8s-file", "busybox", "sh", "-c", "echo tty-out; echo tty-err >&2")
	p3 := strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.LogPath}}", "klog3").stdout)
	// Where a tty's records split is the kernel's timing: it may hand
	// "tty-out" and its "\r\n" to two reads, as it does to conmon. The
	// lines put back together are what a reader of the log gets.
	if recs := criRecords(t, p3); strings.Join(criLines(recs), "|") != "stdout tty-out\r|stdout tty-err\r" {
		t.Errorf("tty records: %q", recs)
	}
	if r := s.run(docker, "run", "--rm", "--log-driver", "k8s-file", "--log-opt", "path=rel/c.log", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "must be absolute") {
		t.Errorf("a relative path: %s", r)
	}
	// On an external OCI runtime the Go loop writes the log, not
	// lodge-shim: the same records.
	s.must(docker, "run", "--name", "klog4", "--runtime", "runc", "--log-driver", "k8s-file", "busybox", "sh", "-c", "echo one; echo two >&2; sleep 0.2; printf thr; sleep 0.2; echo ee; printf four")
	p4 := strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.LogPath}}", "klog4").stdout)
	if got := criRecords(t, p4); !sameByStream(got, recs) {
		t.Errorf("records of the Go loop (runc): %q, lodge-shim's: %q", got, recs)
	}
	if r := s.must(docker, "logs", "klog4"); r.stdout != "one\nthree\nfour" || r.stderr != "two\n" {
		t.Errorf("docker logs of the runc container: %s", r)
	}
}

// sameByStream compares records stream by stream: two pipes are read
// apart, so only each stream's order is the program's.
func sameByStream(a, b []string) bool {
	split := func(recs []string) [2]string {
		var out [2]string
		for _, r := range recs {
			out[map[bool]int{true: 0, false: 1}[strings.HasPrefix(r, "stdout ")]] += r + "|"
		}
		return out
	}
	return len(a) == len(b) && split(a) == split(b)
}

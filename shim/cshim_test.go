package shim

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lodge-containers/lodge/internal/buildbin"
)

// buildCShim builds lodge-shim from its C sources as the Makefile does.
func buildCShim(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var log strings.Builder
	if err := buildbin.Build("..", dir, &log, BinaryName); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	return filepath.Join(dir, BinaryName)
}

// TestCShimProtocol drives the C lodge-shim as lodge-monitor leaves it
// after creating a container: an init that is its child, stopped on the
// exec fifo, the output pipes, stdin and the two listeners inherited. It
// checks the wire protocol of proto.go (go, state, wait, attach frames),
// both log formats as this package reads them, and the exit record.
func TestCShimProtocol(t *testing.T) {
	exe := buildCShim(t)
	// The program: read a line, answer on both streams, end with 7.
	talk := cshimCase{program: `exec 8>&-; read line; echo "got $line"; echo err >&2; printf partial; exit 7`,
		stdout: "got hello\npartial", stderr: "err\n", code: 7}
	for _, format := range []string{"", LogLocal, LogK8sFile} {
		c := talk
		c.format = format
		t.Run("log="+format, func(t *testing.T) { testCShim(t, exe, c) })
	}
	// The CRI format, record by record as the Go loop writes it
	// (TestCRILogFormat), into a file the kubelet renamed before any
	// output: reopenlog makes a new one at the path.
	t.Run("log=k8s-file,reopened", func(t *testing.T) {
		c := talk
		c.format, c.reopen = LogK8sFile, true
		c.records = []string{"stdout F got hello", "stderr F err", "stdout P partial"}
		testCShim(t, exe, c)
	})
	// Lines longer than the maximum come as partial records of at most
	// maxLine bytes, whatever the reads' sizes, then the full one.
	t.Run("log=k8s-file,long-lines", func(t *testing.T) {
		long := strings.Repeat("x", 3*maxLine+5)
		testCShim(t, exe, cshimCase{format: LogK8sFile,
			program: `exec 8>&-; read line; printf '%s\n' "$LONG"; printf '%s' "$LONG" >&2`,
			stdout:  long + "\n", stderr: long, env: []string{"LONG=" + long}})
	})
	// An init whose exit the shim sees before the fifo's end (here a
	// child holds the fifo open a while): it ran its program, so its
	// exit code is recorded, not a failed start.
	t.Run("exit-before-fifo-end", func(t *testing.T) {
		testCShim(t, exe, cshimCase{program: `( exec 0</dev/null >/dev/null 2>&1; sleep 1 ) & sleep 0.3; echo quick; exit 5`,
			stdout: "quick\n", code: 5})
	})
}

// cshimCase is a program for the test's init to run once started, the
// output it gives and its exit code, with the log format.
type cshimCase struct {
	format, program string
	stdout, stderr  string
	code            int
	env             []string
	// reopen renames the log away once the shim runs and asks it to
	// reopen the path, before the program writes anything.
	reopen bool
	// records are the CRI log's records ("stream tag content") in order.
	records []string
}

func testCShim(t *testing.T, exe string, tc cshimCase) {
	format := tc.format
	dir := t.TempDir()
	cfg := MonitorConfig{
		ID: "c1", StateRoot: filepath.Join(dir, "state"), LogPath: filepath.Join(dir, "log", "c1.log"),
		LogFormat: format, ExitPath: filepath.Join(dir, "exit.json"), SockDir: dir,
		OpenStdin: true, StdinOnce: true,
	}
	if format == "" {
		cfg.LogPath = filepath.Join(dir, "c1-json.log")
	}
	if err := os.MkdirAll(StateDir(cfg), 0o700); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(StateDir(cfg), "exec.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctlL, err := ListenUnix(CtlSocket(dir))
	if err != nil {
		t.Fatal(err)
	}
	attachL, err := ListenUnix(AttachSocket(dir))
	if err != nil {
		t.Fatal(err)
	}
	ctlF, _ := ctlL.File()
	attachF, _ := attachL.File()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	inR, inW, _ := os.Pipe()

	// sh gets 3 ctl, 4 attach, 5 and 6 the output read ends, 7 stdin's
	// write end: the shim's, as the handoff says. 9, 8 and 2 are the
	// init's (stdin, stdout, stderr), which sh closes before it becomes
	// the shim, as lodge-monitor holds none of them.
	h := Handoff{Config: cfg, Pid: -12345, Ctl: 3, Attach: 4, Outputs: []int{5, 6}, Streams: []string{"stdout", "stderr"}, Stdin: 7}
	hb, _ := json.Marshal(h)
	// The init does as libcontainer's: it opens the exec fifo, writes its
	// byte, then runs the program (whose exec would close the fifo).
	script := `
( exec 1>&8 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9<&-
  exec 8>"$FIFO"; printf 0 >&8
  ` + tc.program + ` ) <&9 &
pid=$!
exec 8>&- 9<&- 2>"$SHIMERR"
export _LODGE_SHIM="$(printf '%s' "$HANDOFF" | sed "s/-12345/$pid/")"
exec "$SHIM" cfg`
	shimErrPath := filepath.Join(dir, "shim.stderr")
	shimErr := func() string { b, _ := os.ReadFile(shimErrPath); return string(b) }
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(append(os.Environ(), tc.env...), "FIFO="+fifo, "HANDOFF="+string(hb), "SHIM="+exe, "SHIMERR="+shimErrPath)
	cmd.ExtraFiles = []*os.File{ctlF, attachF, outR, errR, inW, outW, inR}
	cmd.Stderr = errW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range append(cmd.ExtraFiles, errW) {
		f.Close()
	}
	ctlL.Close()
	attachL.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("the shim did not end; its stderr: %s", shimErr())
		}
	}()

	ac, err := net.Dial("unix", AttachSocket(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	ac.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := ac.Write([]byte(`{"stdin":true,"stdout":true,"stderr":true}` + "\n")); err != nil {
		t.Fatal(err)
	}
	if st, p, err := ReadFrame(ac, nil); err != nil || st != StreamStdin || len(p) != 0 {
		t.Fatalf("attach: want the empty frame that says registered, got %d %q %v (shim: %s)", st, p, err, shimErr())
	}
	cc, err := net.Dial("unix", CtlSocket(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cc.SetDeadline(time.Now().Add(20 * time.Second))
	cr := bufio.NewReader(cc)
	ctl := func(req string) CtlReply {
		t.Helper()
		if _, err := cc.Write([]byte(req + "\n")); err != nil {
			t.Fatal(err)
		}
		return readReply(t, cr)
	}
	if rep := ctl(`{"op":"state"}`); !rep.Running || rep.Pid <= 0 || rep.Exit != nil {
		t.Errorf("state before go: %+v, want running with a pid", rep)
	}
	if rep := ctl(`{"op":"resize","w":80,"h":24}`); rep.Error != "not a tty" {
		t.Errorf("resize without a tty: %+v", rep)
	}
	if rep := ctl(`{"op":"frob"}`); rep.Error != "unknown op frob" {
		t.Errorf("unknown op: %+v", rep)
	}
	// A wait sent while the container runs is answered when it ends, on
	// its own connection, as lodged's watch asks (before, it was left
	// unanswered until the shim went, 100 ms later, and lodged fell back
	// to the exit file: every container's end was recorded late).
	wc, err := net.Dial("unix", CtlSocket(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	wc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := wc.Write([]byte(`{"op":"wait"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	if rep := ctl(`{"op":"state"}`); !rep.Running {
		t.Errorf("state after the wait was sent: %+v, want running", rep) // the wait is read before go
	}
	waited := make(chan CtlReply, 1)
	go func() {
		var rep CtlReply
		if err := json.NewDecoder(wc).Decode(&rep); err != nil {
			rep.Error = "no reply to a pending wait: " + err.Error()
		}
		waited <- rep
	}()
	if rep := ctl(`{"op":"go"}`); rep.Error != "" {
		t.Fatalf("go: %+v", rep)
	}
	if tc.reopen {
		if err := os.Rename(cfg.LogPath, cfg.LogPath+".1"); err != nil {
			t.Fatal(err)
		}
		if rep := ctl(`{"op":"reopenlog"}`); rep.Error != "" {
			t.Fatalf("reopenlog: %+v", rep)
		}
		if _, err := os.Stat(cfg.LogPath); err != nil {
			t.Errorf("no new log file after reopenlog: %v", err)
		}
	}
	if _, err := ac.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	// The client's end of stdin ends the container's (StdinOnce).
	ac.(*net.UnixConn).CloseWrite()
	got := map[byte]string{}
	for {
		st, p, err := ReadFrame(ac, nil)
		if err != nil {
			break // the shim closes attach connections once the container ended
		}
		got[st] += string(p)
	}
	if got[StreamStdout] != tc.stdout || got[StreamStderr] != tc.stderr {
		t.Errorf("attach output: %q", got)
	}
	if rep := <-waited; rep.Error != "" || rep.Exit == nil || rep.Exit.ExitCode != tc.code {
		t.Errorf("pending wait: %+v", rep)
	}
	rep := ctl(`{"op":"wait"}`)
	if rep.Exit == nil || rep.Exit.ExitCode != tc.code || rep.Exit.FinishedAt.IsZero() {
		t.Errorf("wait: %+v", rep)
	}
	if rep := ctl(`{"op":"reopenlog"}`); rep.Error != "container is not running" {
		t.Errorf("reopenlog after the end: %+v", rep)
	}
	if err := <-done; err != nil {
		t.Errorf("the shim ended with %v; its stderr: %s", err, shimErr())
	}
	done <- nil

	var st ExitStatus
	if b, err := os.ReadFile(cfg.ExitPath); err != nil || json.Unmarshal(b, &st) != nil || st.ExitCode != tc.code || st.OOMKilled || st.Error != "" {
		t.Errorf("exit record: %+v (%v)", st, err)
	}
	if _, err := os.Stat(StateDir(cfg)); !os.IsNotExist(err) {
		t.Errorf("the container's state dir is left: %v", err)
	}

	// The log holds each line once, with its stream, as Docker's readers
	// (and lodge's, in this package) take it.
	b, err := os.ReadFile(cfg.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string]string{}
	if tc.reopen {
		if old, err := os.ReadFile(cfg.LogPath + ".1"); err != nil || len(old) != 0 {
			t.Errorf("the renamed log: %q, %v (want it empty: nothing was written before)", old, err)
		}
	}
	if format == LogK8sFile {
		recs := criFileRecords(t, cfg.LogPath)
		for i, r := range recs {
			stream, rest, _ := strings.Cut(r, " ")
			tag, content, _ := strings.Cut(rest, " ")
			if len(content) > maxLine {
				t.Errorf("record %d is %d bytes, over the maximum line", i, len(content))
			}
			logged[stream] += content
			if tag == "F" {
				logged[stream] += "\n"
			}
		}
		// In order within each stream: the two pipes are read apart.
		if tc.records != nil && !equalByStream(recs, tc.records) {
			t.Errorf("CRI log records:\n got %q\nwant %q", recs, tc.records)
		}
	} else if format == LogLocal {
		for len(b) > 0 {
			e, n, err := DecodeLocal(b)
			if err != nil || n == 0 {
				t.Fatalf("local log: %v (%d bytes left)", err, len(b))
			}
			logged[e.Stream] += string(e.Line)
			b = b[n:]
		}
	} else {
		for _, line := range strings.SplitAfter(string(b), "\n") {
			if line == "" {
				continue
			}
			var e logEntry
			if err := json.Unmarshal([]byte(line), &e); err != nil || e.Time.IsZero() {
				t.Fatalf("json-file line %q: %v", line, err)
			}
			logged[e.Stream] += e.Log
		}
	}
	if logged["stdout"] != tc.stdout || logged["stderr"] != tc.stderr {
		t.Errorf("log: %q", logged)
	}
}

// equalByStream compares CRI records ("stream tag content") stream by
// stream, in order within each.
func equalByStream(got, want []string) bool {
	split := func(recs []string) map[string]string {
		m := map[string]string{}
		for _, r := range recs {
			stream, _, _ := strings.Cut(r, " ")
			m[stream] += r + "|"
		}
		return m
	}
	g, w := split(got), split(want)
	return len(got) == len(want) && g["stdout"] == w["stdout"] && g["stderr"] == w["stderr"]
}

// readReply reads one JSON reply.
func readReply(t *testing.T, r *bufio.Reader) CtlReply {
	t.Helper()
	line, err := r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("ctl reply: %v", err)
	}
	var rep CtlReply
	if err := json.Unmarshal(line, &rep); err != nil {
		t.Fatalf("ctl reply %q: %v", line, err)
	}
	return rep
}

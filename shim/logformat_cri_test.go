package shim

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// criRecordRE is one record as the kubelet's parser takes it: the time in
// RFC 3339 with nine digits in UTC, a stream, a tag, the content.
var criRecordRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [PF] `)

// criLog writes chunks (stream, bytes, as the pump reads them) to a
// k8s-file log and returns its records as "stream tag content", each
// checked against the format and against ParseCRI.
func criLog(t *testing.T, chunks [][2]string) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pod", "ctr", "0.log")
	l, err := openLog(MonitorConfig{LogPath: path, LogFormat: LogK8sFile})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chunks {
		l.write(c[0], []byte(c[1]))
	}
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	return criFileRecords(t, path)
}

// criFileRecords reads a CRI-format file as "stream tag content" strings.
func criFileRecords(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("the log does not end in a newline: %q", b)
	}
	var out []string
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		if !criRecordRE.MatchString(line) {
			t.Errorf("not a CRI log record: %q", line)
			continue
		}
		e, err := ParseCRI([]byte(line))
		if err != nil {
			t.Errorf("ParseCRI(%q): %v", line, err)
			continue
		}
		if time.Since(e.Time) > time.Minute || time.Since(e.Time) < 0 {
			t.Errorf("record time %v is not now", e.Time)
		}
		tag := "F"
		if e.Partial {
			tag = "P"
		}
		out = append(out, e.Stream+" "+tag+" "+string(e.Content))
	}
	return out
}

func TestCRILogFormat(t *testing.T) {
	long := strings.Repeat("a", maxLine)
	for _, tc := range []struct {
		name   string
		chunks [][2]string
		want   []string
	}{
		{"lines on both streams", [][2]string{{"stdout", "one\ntwo\n"}, {"stderr", "err\n"}},
			[]string{"stdout F one", "stdout F two", "stderr F err"}},
		{"an empty line is a full record", [][2]string{{"stdout", "\n"}}, []string{"stdout F "}},
		// Output without its newline yet is written at once, partial;
		// the rest of the line follows as its full record.
		{"output without a newline", [][2]string{{"stdout", "prompt> "}, {"stdout", "answer\nnext"}},
			[]string{"stdout P prompt> ", "stdout F answer", "stdout P next"}},
		{"a line longer than the maximum is cut", [][2]string{{"stdout", long + long + "xyz\n"}},
			[]string{"stdout P " + long, "stdout P " + long, "stdout F xyz"}},
		{"a line of exactly the maximum is one record", [][2]string{{"stderr", long + "\n"}},
			[]string{"stderr F " + long}},
		{"partial output of the maximum and more", [][2]string{{"stdout", long + "b"}},
			[]string{"stdout P " + long, "stdout P b"}},
		// A tty's output is one stream, stdout, carriage returns and all.
		{"tty output", [][2]string{{"stdout", "$ ls\r\nbin\r\n$ "}},
			[]string{"stdout F $ ls\r", "stdout F bin\r", "stdout P $ "}},
		{"spaces in content stay", [][2]string{{"stdout", "  a  b \n"}}, []string{"stdout F   a  b "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := criLog(t, tc.chunks)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("records:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestParseCRIRejects(t *testing.T) {
	for _, line := range []string{
		"", "no-spaces", "2016-10-06T00:17:09.669794202Z stdout", "yesterday stdout F x",
		"2016-10-06T00:17:09.669794202Z stdin F x",
	} {
		if _, err := ParseCRI([]byte(line)); err == nil {
			t.Errorf("ParseCRI(%q) took it", line)
		}
	}
	// The kubelet's own example, its tag with room to grow.
	e, err := ParseCRI([]byte("2016-10-06T00:17:09.669794202Z stdout P:x log content 1\n"))
	if err != nil || !e.Partial || string(e.Content) != "log content 1" || e.Stream != "stdout" {
		t.Errorf("ParseCRI: %+v %v", e, err)
	}
}

// TestLogReopen: once the log's file is renamed away, reopen makes a new
// file at the path and later output lands there; the renamed file keeps
// what came before. After close it is refused.
func TestLogReopen(t *testing.T) {
	for _, format := range []string{"", LogK8sFile} {
		t.Run("format="+format, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "0.log")
			l, err := openLog(MonitorConfig{LogPath: path, LogFormat: format})
			if err != nil {
				t.Fatal(err)
			}
			l.write("stdout", []byte("before\n"))
			if err := os.Rename(path, path+".old"); err != nil {
				t.Fatal(err)
			}
			l.write("stdout", []byte("still old\n"))
			if err := l.reopen(); err != nil {
				t.Fatal(err)
			}
			l.write("stderr", []byte("after\n"))
			l.close()
			old, _ := os.ReadFile(path + ".old")
			cur, _ := os.ReadFile(path)
			if !strings.Contains(string(old), "before") || !strings.Contains(string(old), "still old") || strings.Contains(string(old), "after") {
				t.Errorf("renamed file: %q", old)
			}
			if !strings.Contains(string(cur), "after") || strings.Contains(string(cur), "before") {
				t.Errorf("reopened file: %q", cur)
			}
			if err := l.reopen(); err == nil {
				t.Error("reopen after close succeeded")
			}
		})
	}
}

// TestGoLoopReopenLog drives the Go loop's control handler as the daemon
// does: reopenlog while the container runs, refused once it has ended,
// with the C shim's replies (TestCShimProtocol).
func TestGoLoopReopenLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctr", "0.log")
	cfg := MonitorConfig{LogPath: path, LogFormat: LogK8sFile}
	l, err := openLog(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := &monitor{cfg: cfg, log: l, done: make(chan struct{})}
	client, server := net.Pipe()
	defer client.Close()
	go m.ctl(server)
	r := bufio.NewReader(client)
	ask := func() CtlReply {
		t.Helper()
		client.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := client.Write([]byte(`{"op":"reopenlog"}` + "\n")); err != nil {
			t.Fatal(err)
		}
		return readReply(t, r)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if rep := ask(); rep.Error != "" {
		t.Fatalf("reopenlog: %+v", rep)
	}
	l.write("stdout", []byte("new\n"))
	if got := criFileRecords(t, path); len(got) != 1 || got[0] != "stdout F new" {
		t.Errorf("the reopened file: %q", got)
	}
	l.close()
	close(m.done)
	if rep := ask(); rep.Error != "container is not running" {
		t.Errorf("reopenlog after the end: %+v", rep)
	}
}

// TestCRILogRotation: with max-size (docker's --log-opt on k8s-file) the
// CRI log rotates as json-file does, every file whole records.
func TestCRILogRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctr.log")
	l, err := openLog(MonitorConfig{LogPath: path, LogFormat: LogK8sFile, LogMaxSize: 300, LogMaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	for range 40 {
		l.write("stdout", []byte("line of output number xxxxxxxxxx\n"))
	}
	l.close()
	files := RotatedLogs(path)
	if len(files) != 3 {
		t.Fatalf("files %v, want 3", files)
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.Size() > 300 {
			t.Errorf("%s: %v, over the maximum size", f, err)
		}
		for _, r := range criFileRecords(t, f) {
			if r != "stdout F line of output number xxxxxxxxxx" {
				t.Errorf("%s: record %q", f, r)
			}
		}
	}
}

// FuzzParseCRI: any line either parses into a record that writes back
// as the same line, or is refused; nothing panics.
func FuzzParseCRI(f *testing.F) {
	f.Add([]byte("2016-10-06T00:17:09.669794202Z stdout P log content 1\n"))
	f.Add([]byte("2016-10-06T00:17:09.669794202Z stderr F \n"))
	f.Add([]byte("2016-10-06T00:17:09Z stdout F:x a b"))
	f.Add([]byte("\x00 \x00 \x00 \x00"))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := ParseCRI(line)
		if err != nil {
			return
		}
		tag := byte(CRIFull)
		if e.Partial {
			tag = CRIPartial
		}
		again, err := ParseCRI(AppendCRI(nil, e.Time, e.Stream, tag, e.Content))
		if err != nil || !again.Time.Equal(e.Time) || again.Stream != e.Stream || again.Partial != e.Partial || string(again.Content) != string(e.Content) {
			t.Errorf("%q: parsed %+v, written and parsed again %+v, %v", line, e, again, err)
		}
	})
}

package shim

import (
	"io"
	"os"
	"testing"
)

// TestOutputFiles: a monitor hands out copies of its output pipes that
// read what the container writes, named by stream.
func TestOutputFiles(t *testing.T) {
	dir := t.TempDir()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	defer outW.Close()
	defer errW.Close()
	m := &monitor{Files: Files{Outputs: []*os.File{outR, errR}, Streams: []string{"stdout", "stderr"}}, done: make(chan struct{}), goCh: make(chan struct{})}
	l, err := ListenUnix(CtlSocket(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go serve(l, m.ctl)
	files, streams, err := OutputFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || streams[0] != "stdout" || streams[1] != "stderr" {
		t.Fatalf("got %d files, streams %v", len(files), streams)
	}
	// The monitor's own ends go: the copies keep the pipes readable.
	outR.Close()
	errR.Close()
	for i, w := range []*os.File{outW, errW} {
		io.WriteString(w, streams[i])
		w.Close()
		b, err := io.ReadAll(files[i])
		if err != nil || string(b) != streams[i] {
			t.Errorf("copy %d read %q, %v", i, b, err)
		}
		files[i].Close()
	}
	if _, _, err := OutputFiles(t.TempDir()); err == nil {
		t.Error("no monitor, yet files")
	}
}

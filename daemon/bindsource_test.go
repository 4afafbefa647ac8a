package daemon

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCheckBindSourceSpecialFiles: a socket is accepted (docker.sock for
// a client in a container) and a FIFO neither hangs nor fails.
func TestCheckBindSourceSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{sock, fifo, "/dev/null", dir} {
		done := make(chan error, 1)
		go func() { done <- checkBindSource(p) }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: checkBindSource still blocked after 5s", p)
		}
	}
}

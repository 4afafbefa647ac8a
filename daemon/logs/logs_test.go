package logs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/shim"
)

type fakeContainers map[string]Source

func (f fakeContainers) Log(ref string) (Source, error) {
	if src, ok := f[ref]; ok {
		return src, nil
	}
	return Source{}, errdefs.NotFoundf("No such container: %s", ref)
}

// TestLogsTailAndStreams: a json-file log's last lines of the asked
// stream, framed as Docker frames them; a tty's raw; "none" is a 501.
func TestLogsTailAndStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	log := `{"log":"one\n","stream":"stdout","time":"2026-01-01T00:00:01Z"}
{"log":"err\n","stream":"stderr","time":"2026-01-01T00:00:02Z"}
{"log":"two\n","stream":"stdout","time":"2026-01-01T00:00:03Z"}
{"log":"three\n","stream":"stdout","time":"2026-01-01T00:00:04Z"}
{"log":"partial`
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	r := New(fakeContainers{
		"framed": {Path: path},
		"tty":    {Path: path, TTY: true},
		"none":   {None: true},
	})
	var want bytes.Buffer
	for _, l := range []string{"two\n", "three\n"} {
		if err := shim.WriteFrame(&want, shim.StreamStdout, []byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	var got bytes.Buffer
	// The tail counts every stream's lines; the stream filter comes after.
	if err := r.Logs(context.Background(), "framed", Options{Stdout: true, Tail: "3"}, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Errorf("framed: %q, want %q", got.Bytes(), want.Bytes())
	}
	got.Reset()
	if err := r.Logs(context.Background(), "tty", Options{Stdout: true, Stderr: true}, &got); err != nil {
		t.Fatal(err)
	}
	if got.String() != "one\nerr\ntwo\nthree\n" {
		t.Errorf("tty: %q", got.String())
	}
	if err := r.Logs(context.Background(), "tty", Options{}, &got); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("no stream: %v", err)
	}
	if err := r.CheckLogsReadable("none"); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("none driver: %v", err)
	}
	if err := r.CheckLogsReadable("gone"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown container: %v", err)
	}
	got.Reset()
	Replay(&got, path, false, true)
	if got.String() != "one\nerr\ntwo\nthree\n" {
		t.Errorf("replay: %q", got.String())
	}
}

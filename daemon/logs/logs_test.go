package logs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

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
	Replay(&got, Source{Path: path, TTY: true})
	if got.String() != "one\nerr\ntwo\nthree\n" {
		t.Errorf("replay: %q", got.String())
	}
}

// TestLogsCRIFormat: a k8s-file log reads as lines: a line's partial
// records join its full one (with the first part's time), streams keep
// apart (a line comes when it is complete: "two" after "err"),
// since/until/tail/timestamps count joined lines, and a partial
// line the container never ended is shown once the log is read whole.
func TestLogsCRIFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	log := `2026-01-01T00:00:01.000000000Z stdout F one
2026-01-01T00:00:02.000000000Z stdout P tw
2026-01-01T00:00:02.500000000Z stderr F err
2026-01-01T00:00:03.000000000Z stdout F o
2026-01-01T00:00:04.000000000Z stdout F 
not a record
2026-01-01T00:00:05.000000000Z stdout P no newline
2026-01-01T00:00:06.000000000Z stdout F mid-wri`
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	r := New(fakeContainers{"c": {Path: path, CRI: true}, "tty": {Path: path, CRI: true, TTY: true}})
	frames := func(lines ...string) string {
		var b bytes.Buffer
		for _, l := range lines {
			stream := byte(shim.StreamStdout)
			if l[0] == '!' {
				stream, l = shim.StreamStderr, l[1:]
			}
			shim.WriteFrame(&b, stream, []byte(l))
		}
		return b.String()
	}
	for _, tc := range []struct {
		name string
		ref  string
		opts Options
		want string
	}{
		{"all", "c", Options{Stdout: true, Stderr: true},
			frames("one\n", "!err\n", "two\n", "\n", "no newline")},
		{"stdout", "c", Options{Stdout: true}, frames("one\n", "two\n", "\n", "no newline")},
		{"tail", "c", Options{Stdout: true, Stderr: true, Tail: "2"}, frames("\n", "no newline")},
		{"since and until", "c", Options{Stdout: true, Stderr: true,
			Since: time.Date(2026, 1, 1, 0, 0, 2, 0, time.UTC), Until: time.Date(2026, 1, 1, 0, 0, 3, 0, time.UTC)},
			frames("!err\n", "two\n")},
		{"timestamps", "c", Options{Stderr: true, Timestamps: true}, frames("!2026-01-01T00:00:02.500000000Z err\n")},
		{"tty", "tty", Options{Stdout: true, Stderr: true}, "one\nerr\ntwo\n\nno newline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got bytes.Buffer
			if err := r.Logs(context.Background(), tc.ref, tc.opts, &got); err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want {
				t.Errorf("got  %q\nwant %q", got.String(), tc.want)
			}
		})
	}
	var got bytes.Buffer
	Replay(&got, Source{Path: path, CRI: true, TTY: true})
	if got.String() != "one\nerr\ntwo\n\nno newline" {
		t.Errorf("replay: %q", got.String())
	}
}

func TestAttrsPrefix(t *testing.T) {
	got := attrsPrefix(map[string]string{"team": "core ops", "b": "x=y/z", "a": "1"})
	if want := "a=1,b=x%3Dy%2Fz,team=core+ops"; got != want {
		t.Errorf("attrsPrefix = %q, want %q", got, want)
	}
	if got := attrsPrefix(nil); got != "" {
		t.Errorf("no attributes: %q", got)
	}
}

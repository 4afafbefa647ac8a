package paths

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckOwnedPath(t *testing.T) {
	uid, gid := os.Getuid(), os.Getgid()
	base := t.TempDir()
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	own := mk("own", 0o700)
	open := mk("open", 0o777)
	sticky := mk("sticky", 0o777|os.ModeSticky)
	mk("sticky/mine", 0o755)
	groupw := mk("groupw", 0o770)
	if err := os.Symlink(own, filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string
		ok   bool
	}{
		{"own 0700 dir", own, true},
		{"missing below own dir", filepath.Join(own, "a", "b"), true},
		{"dir writable by all", open, false},
		{"missing below a dir writable by all", filepath.Join(open, "data"), false},
		{"own dir in a sticky dir", filepath.Join(sticky, "mine"), true},
		{"group-writable itself", groupw, false},
		{"below own group's writable dir", filepath.Join(groupw, "x"), true},
		{"own symlink to own dir", filepath.Join(base, "link"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckOwnedPath(tc.path, uid, gid)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckOwnedPath(%s) = %v, want ok=%v", tc.path, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrUnsafeDir) {
				t.Fatalf("error does not wrap ErrUnsafeDir: %v", err)
			}
		})
	}
	if err := CheckOwnedPath(own, uid+1, gid); err == nil {
		t.Error("a dir owned by another uid was accepted")
	}
}

func TestDialOwner(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	c, err := DialOwner(context.Background(), sock, os.Getuid())
	if err != nil {
		t.Fatalf("own socket refused: %v", err)
	}
	c.Close()
	if _, err := DialOwner(context.Background(), sock, os.Getuid()+1); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("a socket served by another uid: err = %v, want ErrNotOwner", err)
	}
}

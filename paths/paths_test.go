package paths

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRuntimeDirSelection(t *testing.T) {
	tests := []struct {
		name       string
		env        Env
		wantRun    string
		wantSocket string
		wantHost   string
	}{
		{"xdg", Env{UID: 1000, XDGRuntimeDir: "/run/user/1000"}, "/run/user/1000/lodge", "/run/user/1000/lodge/lodge.sock", "unix:///run/user/1000/lodge/lodge.sock"},
		{"no xdg falls back to tmp", Env{UID: 1234}, "/tmp/lodge-1234", "/tmp/lodge-1234/lodge.sock", "unix:///tmp/lodge-1234/lodge.sock"},
		{"explicit wins", Env{UID: 1, XDGRuntimeDir: "/x", ExplicitRunDir: "/e"}, "/e", "/e/lodge.sock", "unix:///e/lodge.sock"},
		{"LODGE_HOST for the CLI", Env{UID: 1, XDGRuntimeDir: "/x", LodgeHost: "tcp://h:1"}, "/x/lodge", "/x/lodge/lodge.sock", "tcp://h:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.env.RuntimeDir(); got != tt.wantRun {
				t.Errorf("RuntimeDir() = %q, want %q", got, tt.wantRun)
			}
			if got := tt.env.Socket(); got != tt.wantSocket {
				t.Errorf("Socket() = %q, want %q", got, tt.wantSocket)
			}
			if got := tt.env.Host(); got != tt.wantHost {
				t.Errorf("Host() = %q, want %q", got, tt.wantHost)
			}
		})
	}
}

func TestDataRootAndConfig(t *testing.T) {
	e := Env{Home: "/home/u"}
	if got := e.DataRoot(); got != "/home/u/.local/share/lodge" {
		t.Errorf("DataRoot() = %q", got)
	}
	if got := e.ConfigFile(); got != "/home/u/.config/lodge/daemon.json" {
		t.Errorf("ConfigFile() = %q", got)
	}
	e.XDGDataHome, e.XDGConfigHome = "/d", "/c"
	if got := e.DataRoot(); got != "/d/lodge" {
		t.Errorf("DataRoot() = %q", got)
	}
	if got := e.ConfigFile(); got != "/c/lodge/daemon.json" {
		t.Errorf("ConfigFile() = %q", got)
	}
}

func TestEnsurePrivateDir(t *testing.T) {
	uid := os.Getuid()
	base := t.TempDir()

	fresh := filepath.Join(base, "fresh")
	if err := EnsurePrivateDir(fresh, uid); err != nil {
		t.Fatalf("new dir: %v", err)
	}
	if fi, _ := os.Stat(fresh); fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode %o, want 0700", fi.Mode().Perm())
	}
	if err := EnsurePrivateDir(fresh, uid); err != nil {
		t.Fatalf("existing private dir refused: %v", err)
	}

	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := EnsurePrivateDir(open, uid); !errors.Is(err, ErrUnsafeDir) {
		t.Errorf("0755 dir: err = %v, want ErrUnsafeDir", err)
	}

	target := filepath.Join(base, "target")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := EnsurePrivateDir(link, uid); !errors.Is(err, ErrUnsafeDir) {
		t.Errorf("symlink: err = %v, want ErrUnsafeDir", err)
	}

	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := EnsurePrivateDir(file, uid); !errors.Is(err, ErrUnsafeDir) {
		t.Errorf("file: err = %v, want ErrUnsafeDir", err)
	}

	if err := EnsurePrivateDir(fresh, uid+1); !errors.Is(err, ErrUnsafeDir) {
		t.Errorf("other owner: err = %v, want ErrUnsafeDir", err)
	}
}

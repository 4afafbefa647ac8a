package daemon

import (
	"os"
	"path/filepath"
	"testing"
)

// TestResolveUserStaysInRoot: names come from the container's own
// passwd and group files, and a passwd that is a symlink out of the root
// (absolute, or ../ past it) reads the root's file of that path or none,
// never the host's.
func TestResolveUserStaysInRoot(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(root, "etc"), filepath.Join(outside, "etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(outside, "etc", "passwd"), "evil:x:666:666::/:/bin/sh\n")
	write(filepath.Join(root, "etc", "group"), "staff:x:50:app\n")
	write(filepath.Join(root, "etc", "passwd.real"), "app:x:1000:1000::/home/app:/bin/sh\n")

	// A relative link inside the root is followed.
	if err := os.Symlink("passwd.real", filepath.Join(root, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	uid, gid, groups, err := resolveUser(root, "app")
	if err != nil || uid != 1000 || gid != 1000 || len(groups) != 1 || groups[0] != 50 {
		t.Errorf("app: %d %d %v %v, want 1000 1000 [50]", uid, gid, groups, err)
	}

	// Links that aim out of the root land inside it (where there is no
	// such file) and never reach outside/etc/passwd.
	for _, target := range []string{filepath.Join(outside, "etc", "passwd"), "../../outside/etc/passwd"} {
		os.Remove(filepath.Join(root, "etc", "passwd"))
		if err := os.Symlink(target, filepath.Join(root, "etc", "passwd")); err != nil {
			t.Fatal(err)
		}
		if uid, _, _, err := resolveUser(root, "evil"); err == nil {
			t.Errorf("link %s: evil resolved to %d from outside the root", target, uid)
		}
	}
}

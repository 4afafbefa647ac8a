package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	for name, write := range map[string]func(string, []byte, os.FileMode) error{"Write": Write, "Replace": Replace} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "record.json")
			if err := write(p, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := write(p, []byte("new"), 0o644); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(p)
			fi, _ := os.Stat(p)
			if err != nil || string(b) != "new" || fi.Mode().Perm() != 0o644 {
				t.Fatalf("content %q mode %v err %v", b, fi.Mode(), err)
			}
			if err := write(filepath.Join(dir, "missing", "x"), []byte("x"), 0o600); err == nil {
				t.Fatal("a write into a missing directory succeeded")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Fatalf("temp files left: %v", entries)
			}
		})
	}
}

// A rename that fails (here over a directory) leaves the old content and
// no temp file, and says why.
func TestFailedRenameLeavesNothing(t *testing.T) {
	for name, write := range map[string]func(string, []byte, os.FileMode) error{"Write": Write, "Replace": Replace} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "record")
			if err := os.MkdirAll(filepath.Join(p, "in-the-way"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := write(p, []byte("new"), 0o600); err == nil {
				t.Fatal("a write over a non-empty directory succeeded")
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Name() != "record" {
				t.Fatalf("left in the directory: %v", entries)
			}
		})
	}
}

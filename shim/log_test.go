package shim

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestJSONLogRotation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxFiles int
		want     int // files after writing
	}{
		{"three files", 3, 3},
		{"one file starts over", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c-json.log")
			l, err := openJSONLog(path, 200, tc.maxFiles)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 40; i++ {
				l.write("stdout", []byte("line of output number "+strings.Repeat("x", 10)+"\n"))
			}
			l.close()
			files := RotatedLogs(path)
			if len(files) != tc.want {
				t.Fatalf("files %v, want %d", files, tc.want)
			}
			for _, f := range files {
				fi, err := os.Stat(f)
				if err != nil || fi.Size() > 200 {
					t.Errorf("%s: %v, size %d > max 200", f, err, fi.Size())
				}
			}
			if _, err := os.Stat(path + "." + strconv.Itoa(tc.maxFiles)); err == nil {
				t.Errorf("kept more than %d files", tc.maxFiles)
			}
		})
	}
}

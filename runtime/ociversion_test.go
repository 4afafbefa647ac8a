package runtime

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestSpecVersionFor(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, bin, want string
	}{
		{"embedded", "", specs.Version},
		// runc 1.1 (Debian 12's).
		{"older max", script("runc", `[ "$1" = features ] && echo '{"ociVersionMin":"1.0.0","ociVersionMax":"1.0.2-dev"}'`), "1.0.2-dev"},
		{"newer max", script("future", `echo '{"ociVersionMax":"9.0.0"}'`), specs.Version},
		// crun 1.8 has no features command, and refuses 1.2.0 and up.
		{"no features", script("crun", `echo "unknown command $1" >&2; exit 1`), oldestSpecVersion},
		{"garbage", script("odd", `echo 'not json'`), oldestSpecVersion},
		{"missing", filepath.Join(dir, "absent"), oldestSpecVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SpecVersionFor(tc.bin); got != tc.want {
				t.Errorf("SpecVersionFor(%s) = %q, want %q", tc.bin, got, tc.want)
			}
			// Asked again, from the cache.
			if got := SpecVersionFor(tc.bin); got != tc.want {
				t.Errorf("again: %q, want %q", got, tc.want)
			}
		})
	}
}

func TestOlderSpecVersion(t *testing.T) {
	for _, tc := range []struct{ max, ours, want string }{
		{"1.0.2-dev", "1.3.0", "1.0.2-dev"},
		{"1.1.0+dev", "1.3.0", "1.1.0+dev"},
		{"1.3.0", "1.3.0", "1.3.0"},
		{"1.10.0", "1.3.0", "1.3.0"},
		{"2", "1.3.0", "1.3.0"},
		{"", "1.3.0", "1.3.0"},
		{"1.x.0", "1.3.0", "1.3.0"},
	} {
		if got := olderSpecVersion(tc.max, tc.ours); got != tc.want {
			t.Errorf("olderSpecVersion(%q, %q) = %q, want %q", tc.max, tc.ours, got, tc.want)
		}
	}
}

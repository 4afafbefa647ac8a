package paths

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Helper finds one of lodge's binaries (lodged, lodge-monitor,
// lodge-usernet, lodge-init): beside the running executable first, so an
// unpacked release or a build tree works from wherever it sits, then in
// ../libexec/lodge beside it (what `make install` lays out, so that only
// lodge and lodged are on the user's PATH), then on $PATH. The error names
// the binary and where it was looked for.
func Helper(name string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(self)
	for _, p := range []string{filepath.Join(dir, name), filepath.Join(dir, "..", "libexec", "lodge", name)} {
		if isExecutable(p) {
			return filepath.Clean(p), nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s is neither beside %s, in %s nor on $PATH", name, self, filepath.Join(dir, "..", "libexec", "lodge"))
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

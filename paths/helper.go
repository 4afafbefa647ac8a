package paths

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Helper finds one of lodge's helper binaries (lodge-monitor,
// lodge-usernet): beside the running executable first, so an unpacked
// release works from wherever it sits, then on $PATH. The error names the
// binary and where it was looked for.
func Helper(name string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if p := filepath.Join(filepath.Dir(self), name); isExecutable(p) {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s is neither beside %s nor on $PATH", name, self)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

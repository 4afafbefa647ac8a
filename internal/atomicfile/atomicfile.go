// Package atomicfile replaces files whole: through a temp file in the same
// directory, fsync and rename, so a kill -9 or a power cut at any moment
// leaves the old content or the new, never half of either. lodge's records
// (containers, volumes, the build cache index, exit statuses, the docker
// config it edits) are written this way. It imports nothing of lodge's.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with data, mode perm. On error path is unchanged and
// no temp file is left behind.
func Write(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

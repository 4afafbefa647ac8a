// Package atomicfile replaces files whole: through a temp file in the same
// directory and a rename, so a kill -9 at any moment leaves the old content
// or the new, never half of either. Write also fsyncs, for records that
// must survive a power cut too (containers, volumes, the build cache index,
// the docker config it edits); Replace does not, for files that matter only
// while the machine stays up (a running container's spec and monitor
// settings, its exit status). It imports nothing of lodge's.
package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
)

// Write replaces path with data, mode perm, and syncs it to the disk
// before the rename. On error path is unchanged and no temp file is left
// behind.
func Write(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, true)
}

// Replace is Write without the fsync: the rename still makes the change
// whole for every reader and across a kill -9 (the page cache outlives
// the process), but a power cut may leave the old content, or none, on
// filesystems that do not order the rename after the data. The fsync is
// most of a small write's cost on a busy disk.
func Replace(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, false)
}

func write(path string, data []byte, perm os.FileMode, sync bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	err = fill(tmp, data, perm, sync)
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		// The promise above: no temp file left, or an error that says so.
		if rerr := os.Remove(tmp.Name()); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// fill writes data to tmp and closes it.
func fill(tmp *os.File, data []byte, perm os.FileMode, sync bool) error {
	_, err := tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil && sync {
		err = tmp.Sync()
	}
	// Close is where a write error may show; after another error it is
	// only the release of the descriptor.
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	return err
}

package runtime

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/opencontainers/runc/libcontainer"
)

// Forget removes what the runtime keeps of a container whose monitor is
// gone (its monitor would have on the container's exit): libcontainer's
// state, or the OCI runtime binary's, and says what it could not remove.
// The caller has no one to fail for that: what is left, the next start of
// the same container removes before it creates (lcBackend.create,
// ociBackend.create), and that start fails, saying why, if it cannot
// either.
func Forget(stateRoot, id, runtimeBin string) error { return forget(stateRoot, id, runtimeBin) }

func forget(stateRoot, id, runtimeBin string) error {
	if runtimeBin != "" {
		root := OCIStateRoot(stateRoot, runtimeBin)
		cmd := ociCommand(runtimeBin, root, os.DevNull, "delete", "--force", id)
		done := make(chan error, 1)
		go func() { done <- cmd.Run() }()
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("%s delete: %w", runtimeBin, err)
			}
			return nil
		case <-time.After(30 * time.Second):
			if cmd.Process != nil {
				cmd.Process.Kill()
			}
			return fmt.Errorf("%s delete did not end within 30s", runtimeBin)
		}
	}
	c, err := libcontainer.Load(stateRoot, id)
	if errors.Is(err, libcontainer.ErrNotExist) {
		return nil // nothing kept
	}
	if err != nil {
		return err
	}
	return c.Destroy()
}

package runtime

import (
	"os"
	"time"

	"github.com/opencontainers/runc/libcontainer"
)

// Forget removes what the runtime keeps of a container whose monitor is
// gone (its monitor would have on the container's exit): libcontainer's
// state, or the OCI runtime binary's.
func Forget(stateRoot, id, runtimeBin string) {
	if runtimeBin != "" {
		root := OCIStateRoot(stateRoot, runtimeBin)
		cmd := ociCommand(runtimeBin, root, os.DevNull, "delete", "--force", id)
		done := make(chan struct{})
		go func() {
			cmd.Run()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			if cmd.Process != nil {
				cmd.Process.Kill()
			}
		}
		return
	}
	if c, err := libcontainer.Load(stateRoot, id); err == nil {
		c.Destroy()
	}
}

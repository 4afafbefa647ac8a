package userns

import (
	"fmt"
	"os"

	"github.com/lodge-containers/lodge/paths"
)

// KeeperBinary runs lodged's stages that only hold namespaces, pipes and
// the uplink: the keeper's host side (rootlesskit's parent), rootlesskit's
// child, the keeper and the pin. It is a binary of its own, not lodged
// re-executed, because each of those processes lives as long as lodged
// does and would otherwise carry all of lodged (the image store, the
// registry client, libcontainer, the API) mapped and initialized: about
// 19 MiB resident each, for work that needs a few.
const KeeperBinary = "lodge-keeper"

// KeeperExecutable finds lodge-keeper as paths.Helper does.
func KeeperExecutable() (string, error) {
	exe, err := paths.Helper(KeeperBinary)
	if err != nil {
		return "", fmt.Errorf("cannot start lodged's namespace keeper: %w", err)
	}
	return exe, nil
}

// Facts the keeper's host side learns and the daemon reports travel
// down the stages in these variables.
const (
	// EnvNetAsked is the uplink driver the user asked for
	// (--network-driver), for the host side to choose from.
	EnvNetAsked = "_LODGE_NET_ASKED"
	// EnvNetDriver is the uplink driver chosen, EnvNetSkipped (lines)
	// the ones passed over and why.
	EnvNetDriver  = "_LODGE_NET_DRIVER"
	EnvNetSkipped = "_LODGE_NET_SKIPPED"
	// EnvIDSource says in words where the id maps come from;
	// EnvSingleID is "true" with the single-id map.
	EnvIDSource = "_LODGE_IDMAP_SOURCE"
	EnvSingleID = "_LODGE_SINGLE_ID"
	// EnvForceSingle tells the keeper's host side to use the single-id
	// map, and why.
	EnvForceSingle = "_LODGE_FORCE_SINGLE_ID"
	// EnvKeeperDebug asks the keeper's stages for debug logs (lodged
	// --debug).
	EnvKeeperDebug = "_LODGE_KEEPER_DEBUG"
)

// ownExecutable is the running binary's path, for a keeper request.
func ownExecutable() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	return exe
}

// Package version says which lodge this is. It is a leaf package; the build
// sets Version with -ldflags "-X github.com/lodge-containers/lodge/version.Version=...".
package version

// Version is lodge's release, "dev" for a build from a work tree.
var Version = "dev"

// API versions of the Docker Engine API that lodge serves. The Docker CLI 29
// refuses servers below 1.44, so the reported version never goes below it.
const (
	// APIVersion is the newest Docker Engine API version lodge speaks.
	APIVersion = "1.51"
	// MinAPIVersion is the oldest one it accepts in a /v1.NN/ prefix.
	MinAPIVersion = "1.24"
)

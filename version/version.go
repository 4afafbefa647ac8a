// Package version says which lodge this is. It is a leaf package; the build
// names the source revision with -ldflags "-X github.com/lodge-containers/lodge/version.Commit=...".
package version

import (
	"runtime/debug"
	"strings"
)

// Release is the lodge release this source tree is, a semantic version.
const Release = "0.1.0"

// Commit is the source revision of the build, set by the linker (the
// Makefile passes `git describe --always --dirty`); without it, the
// revision the Go toolchain stamped, if any.
var Commit = ""

// Version is what lodge reports as its version: Release, with the commit
// as build metadata ("0.1.0+d33f8f5-dirty"). Clients parse the server's
// version as a semantic version (compose, testcontainers, docker-py), so
// it must stay one: it is computed at start-up, and a linker -X of
// Version itself is overridden.
var Version = withMetadata(Release, commit())

func commit() string {
	if Commit != "" {
		return Commit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && dirty {
		rev += "-dirty"
	}
	return rev
}

// withMetadata appends the commit as build metadata, keeping only what
// semver allows there ([0-9A-Za-z-], dot-separated, none empty).
func withMetadata(release, commit string) string {
	var parts []string
	for _, p := range strings.Split(commit, ".") {
		p = strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' {
				return r
			}
			return '-'
		}, p)
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return release
	}
	return release + "+" + strings.Join(parts, ".")
}

// API versions of the Docker Engine API that lodge serves. The Docker CLI 29
// refuses servers below 1.44, so the reported version never goes below it.
const (
	// APIVersion is the newest Docker Engine API version lodge speaks.
	APIVersion = "1.51"
	// MinAPIVersion is the oldest one it accepts in a /v1.NN/ prefix.
	MinAPIVersion = "1.24"
)

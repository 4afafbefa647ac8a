// Package platform reads and compares image platforms as Docker's API
// takes them. It is a leaf: the API checks a request's platform before a
// stream starts, the daemon before a create, the image service on pull,
// save and import, and none of them should have to import another for it.
package platform

import (
	"encoding/json"
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lodge-containers/lodge/errdefs"
)

// Parse reads a platform as Docker's API takes it: an OCI platform in JSON
// (what the docker CLI sends), "os[/arch[/variant]]" or a bare
// architecture, names normalised ("x86_64" is amd64, "aarch64" arm64). ""
// is nil: no platform asked for.
func Parse(s string) (*ocispec.Platform, error) {
	if s == "" {
		return nil, nil
	}
	if strings.HasPrefix(strings.TrimSpace(s), "{") {
		var p ocispec.Platform
		if err := json.Unmarshal([]byte(s), &p); err != nil || p.OS == "" || p.Architecture == "" {
			return nil, errdefs.InvalidArgumentf("failed to parse platform: %q", s)
		}
		p.OS = strings.ToLower(p.OS)
		p.Architecture, p.Variant = normalizeArch(strings.ToLower(p.Architecture), strings.ToLower(p.Variant))
		return &p, nil
	}
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || hasEmpty(parts) {
		return nil, errdefs.InvalidArgumentf("%q: invalid platform specifier", s)
	}
	p := ocispec.Platform{OS: "linux"}
	switch len(parts) {
	case 1:
		if isOS(parts[0]) {
			p.OS, p.Architecture = parts[0], runtime.GOARCH
		} else {
			p.Architecture = parts[0]
		}
	case 2:
		p.OS, p.Architecture = parts[0], parts[1]
	case 3:
		p.OS, p.Architecture, p.Variant = parts[0], parts[1], parts[2]
	}
	p.Architecture, p.Variant = normalizeArch(p.Architecture, p.Variant)
	return &p, nil
}

func hasEmpty(s []string) bool {
	for _, v := range s {
		if v == "" {
			return true
		}
	}
	return false
}

func isOS(s string) bool {
	switch s {
	case "linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "aix", "android", "ios", "plan9", "js", "wasip1":
		return true
	}
	return false
}

// normalizeArch maps an architecture's other names to Go's.
func normalizeArch(arch, variant string) (string, string) {
	switch arch {
	case "x86_64", "x86-64", "amd64":
		return "amd64", variant
	case "i386", "i486", "i586", "i686", "386":
		return "386", ""
	case "aarch64", "arm64":
		if variant == "8" || variant == "v8" {
			variant = ""
		}
		return "arm64", variant
	case "armhf":
		return "arm", "v7"
	case "armel":
		return "arm", "v6"
	}
	return arch, variant
}

// Matches tells whether an image of platform have suits want: the same OS
// and architecture, and the same variant when want names one.
func Matches(want, have ocispec.Platform) bool {
	wa, wv := normalizeArch(strings.ToLower(want.Architecture), strings.ToLower(want.Variant))
	ha, hv := normalizeArch(strings.ToLower(have.Architecture), strings.ToLower(have.Variant))
	if have.OS == "" {
		have.OS = "linux"
	}
	return strings.EqualFold(want.OS, have.OS) && wa == ha && (wv == "" || wv == hv)
}

// Format writes a platform as Docker's messages do: "linux/arm64",
// "linux/arm/v7".
func Format(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

package runtime

import (
	"context"
	"encoding/json"
	"os/exec"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/mod/semver"
)

// oldestSpecVersion is the ociVersion written for a runtime that does not
// say which it reads: the last 1.0 release, which every runtime binary
// in use reads. Some refuse a newer one outright (crun 1.8, Debian 12's,
// answers "unknown version specified" to 1.2.0 and up).
const oldestSpecVersion = "1.0.2"

var specVersions sync.Map // runtime binary → the ociVersion to write for it

// SpecVersionFor is the ociVersion a bundle run by the OCI runtime binary
// bin gets: the spec lodge writes (specs.Version), or the newest the
// runtime says it reads (`bin features`, ociVersionMax) if that is older,
// or oldestSpecVersion if it does not say. The fields lodge sets are in
// every 1.x; a runtime ignores those it does not know. "" is the embedded
// runtime, which reads specs.Version.
func SpecVersionFor(bin string) string {
	if bin == "" {
		return specs.Version
	}
	if v, ok := specVersions.Load(bin); ok {
		return v.(string)
	}
	v := probeSpecVersion(bin)
	specVersions.Store(bin, v)
	return v
}

func probeSpecVersion(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "features").Output()
	if err != nil {
		return oldestSpecVersion
	}
	var f features.Features
	if json.Unmarshal(out, &f) != nil {
		return oldestSpecVersion
	}
	return olderSpecVersion(f.OCIVersionMax, specs.Version)
}

// olderSpecVersion is the older of a runtime's ociVersionMax and ours;
// ours when max is no version.
func olderSpecVersion(max, ours string) string {
	if semver.IsValid("v"+max) && semver.Compare("v"+max, "v"+ours) < 0 {
		return max
	}
	return ours
}

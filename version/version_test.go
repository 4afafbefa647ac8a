package version

import (
	"regexp"
	"testing"
)

// semver is Semantic Versioning 2.0.0's grammar for a release with
// optional pre-release and build metadata.
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
	`(-(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(\.(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*)?` +
	`(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

func TestVersionIsSemver(t *testing.T) {
	for _, tc := range []struct{ commit, want string }{
		{"", Release},
		{"d33f8f5", Release + "+d33f8f5"},
		{"d33f8f5-dirty", Release + "+d33f8f5-dirty"},
		{"v0.1.0-3-gd33f8f5", Release + "+v0.1.0-3-gd33f8f5"},
		{"a..b/c", Release + "+a.b-c"},
		{"...", Release},
	} {
		got := withMetadata(Release, tc.commit)
		if got != tc.want || !semver.MatchString(got) {
			t.Errorf("withMetadata(%q) = %q, want %q (a semantic version)", tc.commit, got, tc.want)
		}
	}
	if !semver.MatchString(Version) {
		t.Errorf("Version %q is not a semantic version", Version)
	}
}

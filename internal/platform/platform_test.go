package platform

import (
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParseMatchFormat(t *testing.T) {
	for in, want := range map[string]string{
		"linux/amd64":                           "linux/amd64",
		"linux/x86_64":                          "linux/amd64",
		"linux/aarch64":                         "linux/arm64",
		"linux/arm64/v8":                        "linux/arm64",
		"arm64":                                 "linux/arm64",
		"linux/arm/v7":                          "linux/arm/v7",
		"Windows/AMD64":                         "windows/amd64",
		`{"architecture":"arm64","os":"linux"}`: "linux/arm64",
	} {
		p, err := Parse(in)
		if err != nil || Format(*p) != want {
			t.Errorf("Parse(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"linux/", "/amd64", "a/b/c/d"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	amd := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	armv7 := ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	for _, tc := range []struct {
		want, have ocispec.Platform
		ok         bool
	}{
		{amd, amd, true},
		{ocispec.Platform{OS: "linux", Architecture: "x86_64"}, amd, true},
		{ocispec.Platform{OS: "linux", Architecture: "arm64"}, amd, false},
		{ocispec.Platform{OS: "linux", Architecture: "arm"}, armv7, true},
		{ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, armv7, false},
		{ocispec.Platform{OS: "windows", Architecture: "amd64"}, amd, false},
	} {
		if got := Matches(tc.want, tc.have); got != tc.ok {
			t.Errorf("Matches(%v, %v) = %v", tc.want, tc.have, got)
		}
	}
}

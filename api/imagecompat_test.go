package api

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	imagetypes "github.com/moby/moby/api/types/image"
)

func TestLegacyImageFields(t *testing.T) {
	v := imagetypes.InspectResponse{ID: "sha256:abc", Size: 42}
	for _, tc := range []struct {
		version string
		has     []string
		hasNot  []string
	}{
		{"1.38", []string{`"ContainerConfig":{}`, `"Container":""`, `"VirtualSize":42`}, nil},
		{"1.44", []string{`"ContainerConfig":{}`}, []string{"VirtualSize"}},
		// docker-compose v1 negotiates the newest version and reads it.
		{"1.51", []string{`"ContainerConfig":{}`, `"Container":""`}, []string{"VirtualSize"}},
	} {
		ctx := context.WithValue(context.Background(), ctxKey{}, tc.version)
		b, _ := json.Marshal(withLegacyImageFields(ctx, v))
		for _, s := range tc.has {
			if !strings.Contains(string(b), s) {
				t.Errorf("API %s lacks %s: %s", tc.version, s, b)
			}
		}
		for _, s := range tc.hasNot {
			if strings.Contains(string(b), s) {
				t.Errorf("API %s has %s: %s", tc.version, s, b)
			}
		}
		if !strings.Contains(string(b), `"Id":"sha256:abc"`) {
			t.Errorf("API %s lost the Id: %s", tc.version, b)
		}
	}
}

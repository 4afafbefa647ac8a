package daemon

import (
	"reflect"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestMergeEnv(t *testing.T) {
	for _, tc := range []struct {
		base, over, want []string
	}{
		{nil, nil, nil},
		{[]string{"PATH=/bin", "A=1"}, []string{"A=2", "B=3"}, []string{"PATH=/bin", "A=2", "B=3"}},
		// A bare name unsets, whether the image set it or not.
		{[]string{"PATH=/bin", "A=1"}, []string{"A", "MAYBE"}, []string{"PATH=/bin"}},
		{[]string{"A=1"}, []string{"A", "A=again"}, []string{"A=again"}},
		{nil, []string{"EMPTY=", "X=a=b"}, []string{"EMPTY=", "X=a=b"}},
	} {
		got := mergeEnv(tc.base, tc.over)
		if len(got) == 0 && len(tc.want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("mergeEnv(%q, %q) = %q, want %q", tc.base, tc.over, got, tc.want)
		}
	}
	img := &v1.Image{Config: v1.ImageConfig{Env: []string{"PATH=/bin", "GONE=1"}}}
	if got := mergeImageConfig(&container.Config{Env: []string{"GONE", "MAYBE"}}, img).Env; !reflect.DeepEqual(got, []string{"PATH=/bin"}) {
		t.Errorf("with an image: %q", got)
	}
	if got := mergeImageConfig(&container.Config{Env: []string{"MAYBE", "K=v"}}, nil).Env; !reflect.DeepEqual(got, []string{"K=v"}) {
		t.Errorf("without an image: %q", got)
	}
}

// TestMergeExposedPorts: the image's EXPOSE and the request's ports both
// end in the container's config.
func TestMergeExposedPorts(t *testing.T) {
	img := &v1.Image{Config: v1.ImageConfig{ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}, "8080": {}, "bad/tcp": {}}}}
	req := &container.Config{ExposedPorts: network.PortSet{network.MustParsePort("9000/tcp"): {}}}
	got := mergeImageConfig(req, img).ExposedPorts
	want := network.PortSet{}
	for _, p := range []string{"80/tcp", "53/udp", "8080/tcp", "9000/tcp"} {
		want[network.MustParsePort(p)] = struct{}{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("exposed ports %v, want %v", got, want)
	}
	if len(req.ExposedPorts) != 1 {
		t.Errorf("the request's set was changed: %v", req.ExposedPorts)
	}
}

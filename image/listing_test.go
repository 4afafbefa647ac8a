package image

import (
	goruntime "runtime"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	imagetypes "github.com/moby/moby/api/types/image"
	cstorage "go.podman.io/storage"
)

// TestListAsInspect: every listing, the first and those that start from
// what the one before read, gives each image the size, creation time and
// labels that inspect gives it, and forgets a removed image.
func TestListAsInspect(t *testing.T) {
	reg := testRegistry(t, nil)
	s := testService(t)
	base := randomImage(t, 3, goruntime.GOARCH)
	push(t, reg+"/team/base:1", base)
	child := withLayer(t, base)
	cf, err := child.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{"team": "child"}
	cf.Created.Time = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	if child, err = mutate.ConfigFile(child, cf); err != nil {
		t.Fatal(err)
	}
	push(t, reg+"/team/child:1", child)
	for _, r := range []string{"/team/base:1", "/team/child:1"} {
		if _, err := pull(s, reg+r, ""); err != nil {
			t.Fatal(err)
		}
	}

	check := func(when string, want int) {
		t.Helper()
		list, err := s.List(ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != want {
			t.Fatalf("%s: %d images listed, want %d", when, len(list), want)
		}
		for _, sum := range list {
			in, err := s.Inspect(sum.ID)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Size != in.Size || sum.Size <= 0 {
				t.Errorf("%s: %v listed with size %d, inspect says %d", when, sum.RepoTags, sum.Size, in.Size)
			}
			if created, _ := time.Parse(time.RFC3339Nano, in.Created); sum.Created != created.Unix() {
				t.Errorf("%s: %v listed as created %d, inspect says %s", when, sum.RepoTags, sum.Created, in.Created)
			}
			if len(sum.Labels) != len(in.Config.Labels) || sum.Labels["team"] != in.Config.Labels["team"] {
				t.Errorf("%s: %v listed with labels %v, inspect says %v", when, sum.RepoTags, sum.Labels, in.Config.Labels)
			}
		}
	}
	check("first listing", 2)
	check("second listing", 2)
	list, _ := s.List(ListOptions{Filters: map[string][]string{"label": {"team=child"}}})
	if len(list) != 1 || list[0].Created != cf.Created.Unix() {
		t.Errorf("label filter on a listing from kept configs: %+v", list)
	}
	if _, err := s.Remove(reg+"/team/child:1", RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	check("after rmi", 1)
	if n := len(s.listing.configs); n != 1 {
		t.Errorf("the listing keeps %d configs after one of two images went, want 1", n)
	}
}

// TestSharedSizes: an image's shared size is what the layers of its chain
// that another image's chain holds too take, as Docker counts it.
func TestSharedSizes(t *testing.T) {
	layers := layerSet{
		"base": {ID: "base", UncompressedSize: 100},
		"mid":  {ID: "mid", Parent: "base", UncompressedSize: 10},
		"a":    {ID: "a", Parent: "mid", UncompressedSize: 1},
		"b":    {ID: "b", Parent: "mid", UncompressedSize: 2},
		"solo": {ID: "solo", UncompressedSize: 7},
	}
	all := []cstorage.Image{{ID: "A", TopLayer: "a"}, {ID: "B", TopLayer: "b"}, {ID: "M", TopLayer: "mid"}, {ID: "S", TopLayer: "solo"}}
	listed := make([]imagetypes.Summary, len(all))
	tops := make([]string, len(all))
	for i := range all {
		tops[i] = all[i].TopLayer
	}
	sharedSizes(listed, tops, all, layers)
	for i, want := range []int64{110, 110, 110, 0} {
		if listed[i].SharedSize != want {
			t.Errorf("image %s: shared size %d, want %d", all[i].ID, listed[i].SharedSize, want)
		}
	}
}

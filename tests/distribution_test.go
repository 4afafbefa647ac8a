package tests

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
)

// TestDistributionInspect: GET /distribution/{name}/json asks the
// registry what a name points at, pulling nothing. docker compose's
// `config --resolve-image-digests` pins each service's image with it; the
// Go client reads the descriptor and platforms of an image and of a
// two-platform index; a tag the registry lacks is not found, and a
// registry that wants credentials answers with those the client sends.
func TestDistributionInspect(t *testing.T) {
	s, docker := composeV2Session(t)
	reg := startRegistry(t, "", "")
	ctx := t.Context()

	ref := reg + "/dist/app:1"
	s.must(docker, "tag", "busybox", ref)
	push := s.must(docker, "push", ref).stdout
	i := strings.Index(push, "digest: ")
	if i < 0 {
		t.Fatalf("push output: %q", push)
	}
	pushed := strings.Fields(push[i+len("digest: "):])[0]
	// The engine only asks: the image it has is not what answers.
	s.must(docker, "rmi", ref)

	dir := s.buildDir("distproj", map[string]string{"compose.yaml": "services:\n  app:\n    image: " + ref + "\n"})
	r := s.runWith(inDir(dir, nil, ""), docker, "compose", "-p", "distproj", "config", "--resolve-image-digests")
	if r.code != 0 || !strings.Contains(r.stdout, "image: "+ref+"@"+pushed) {
		t.Errorf("docker compose config --resolve-image-digests, want %s@%s: %s", ref, pushed, r)
	}

	cli, err := client.New(client.WithHost("unix://"+s.socket()), client.WithHTTPClient(s.apiClient()))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	got, err := cli.DistributionInspect(ctx, ref, client.DistributionInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Descriptor.Digest.String() != pushed || got.Descriptor.Size == 0 || !strings.Contains(got.Descriptor.MediaType, "manifest") {
		t.Errorf("descriptor of %s: %+v, want digest %s", ref, got.Descriptor, pushed)
	}
	if len(got.Platforms) != 1 || got.Platforms[0].OS != "linux" || got.Platforms[0].Architecture == "" {
		t.Errorf("platforms of %s: %+v, want its config's linux/arch", ref, got.Platforms)
	}
	if _, err := cli.DistributionInspect(ctx, reg+"/dist/app:missing", client.DistributionInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("a tag the registry lacks: %v, want not found", err)
	}

	// An index of two platforms, pushed from here.
	idx := mutate.IndexMediaType(empty.Index, "application/vnd.oci.image.index.v1+json")
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}} {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	multi := reg + "/dist/multi:2"
	nref, err := name.ParseReference(multi, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(nref, idx); err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	got, err = cli.DistributionInspect(ctx, multi, client.DistributionInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var plats []string
	for _, p := range got.Platforms {
		plats = append(plats, strings.TrimSuffix(p.OS+"/"+p.Architecture+"/"+p.Variant, "/"))
	}
	if got.Descriptor.Digest.String() != want.String() || got.Descriptor.MediaType != "application/vnd.oci.image.index.v1+json" || strings.Join(plats, " ") != "linux/amd64 linux/arm64/v8" {
		t.Errorf("index %s: %+v %v, want %s with linux/amd64 linux/arm64/v8", multi, got.Descriptor, plats, want)
	}
	// By digest, as compose asks for a name it has pinned.
	if got, err := cli.DistributionInspect(ctx, reg+"/dist/multi@"+want.String(), client.DistributionInspectOptions{}); err != nil || got.Descriptor.Digest.String() != want.String() || len(got.Platforms) != 2 {
		t.Errorf("index by digest: %+v, %v", got, err)
	}

	// A registry that wants a user: refused without, answered with.
	locked := startRegistry(t, "alice", "s3cret")
	lref := locked + "/dist/locked:1"
	s.must(docker, "tag", "busybox", lref)
	s.must(docker, "login", "-u", "alice", "-p", "s3cret", locked)
	s.must(docker, "push", lref)
	s.must(docker, "logout", locked)
	if _, err := cli.DistributionInspect(ctx, lref, client.DistributionInspectOptions{}); err == nil || !cerrdefs.IsUnauthorized(err) {
		t.Errorf("a registry wanting credentials, none sent: %v, want unauthorized", err)
	}
	b, _ := json.Marshal(registry.AuthConfig{Username: "alice", Password: "s3cret", ServerAddress: locked})
	if got, err := cli.DistributionInspect(ctx, lref, client.DistributionInspectOptions{EncodedRegistryAuth: base64.URLEncoding.EncodeToString(b)}); err != nil || !strings.HasPrefix(got.Descriptor.Digest.String(), "sha256:") {
		t.Errorf("with the client's credentials: %+v, %v", got, err)
	}
	if r := s.run(docker, "image", "inspect", lref); r.code != 0 {
		t.Errorf("the local image went with the inspect: %s", r)
	}
}

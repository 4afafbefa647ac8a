package cri

import (
	"context"
	"errors"
	"io"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/image"
)

// fakeImages is a store of inspected images by ID and by tag.
type fakeImages struct {
	imgs     []imagetypes.InspectResponse
	pulled   string
	auth     *registry.AuthConfig
	removed  []string
	layersSz int64
}

func (f *fakeImages) find(ref string) (int, bool) {
	for i, img := range f.imgs {
		if img.ID == ref {
			return i, true
		}
		for _, t := range img.RepoTags {
			if t == ref {
				return i, true
			}
		}
	}
	return 0, false
}

func (f *fakeImages) List(bool, map[string][]string) ([]imagetypes.Summary, error) {
	var out []imagetypes.Summary
	for _, img := range f.imgs {
		out = append(out, imagetypes.Summary{ID: img.ID})
	}
	return out, nil
}

func (f *fakeImages) Inspect(ref string) (imagetypes.InspectResponse, error) {
	if i, ok := f.find(ref); ok {
		return f.imgs[i], nil
	}
	return imagetypes.InspectResponse{}, errdefs.NotFoundf("No such image: %s", ref)
}

func (f *fakeImages) Remove(ref string, force, noPrune bool) ([]imagetypes.DeleteResponse, error) {
	i, ok := f.find(ref)
	if !ok {
		return nil, errdefs.NotFoundf("No such image: %s", ref)
	}
	f.removed = append(f.removed, ref)
	f.imgs = append(f.imgs[:i], f.imgs[i+1:]...)
	return nil, nil
}

func (f *fakeImages) Pull(_ context.Context, ref, _ string, auth *registry.AuthConfig, _ image.ProgressSink) (string, error) {
	f.pulled, f.auth = ref, auth
	return "pulled", nil // the store's pull answers the bare hex, as lodge's does
}

func (f *fakeImages) Import(context.Context, io.Reader, string, []string, string, string, image.ProgressSink) (string, error) {
	return "", nil
}
func (f *fakeImages) LayersSize() int64 { return f.layersSz }

func TestImageService(t *testing.T) {
	imgs := &fakeImages{layersSz: 1234, imgs: []imagetypes.InspectResponse{{
		ID: "sha256:aaa", RepoTags: []string{"busybox:latest", "bb:1"}, Size: 99,
		Config: &dockerspec.DockerOCIImageConfig{},
	}}}
	imgs.imgs[0].Config.User = "1000:1000"
	is := runtimeapi.NewImageServiceClient(serve(t, New(Backends{Images: imgs, ImageRoot: "/store"}, quiet)))
	ctx := context.Background()

	list, err := is.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Images) != 1 || list.Images[0].Id != "sha256:aaa" || list.Images[0].Size != 99 || list.Images[0].GetUid().GetValue() != 1000 || len(list.Images[0].RepoTags) != 2 {
		t.Fatalf("ListImages = %v", list.Images)
	}
	st, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "bb:1"}, Verbose: true})
	if err != nil || st.Image.GetId() != "sha256:aaa" || st.Info["info"] == "" {
		t.Fatalf("ImageStatus(bb:1) = %v, %v", st, err)
	}
	// Not there: no image and no error, so the kubelet pulls it.
	st, err = is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "nginx"}})
	if err != nil || st.Image != nil {
		t.Fatalf("ImageStatus(missing) = %v, %v", st, err)
	}
	pr, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "reg.example/x:1"}, Auth: &runtimeapi.AuthConfig{Username: "u", Password: "p"}})
	if err != nil || pr.ImageRef != "sha256:pulled" || imgs.pulled != "reg.example/x:1" || imgs.auth == nil || imgs.auth.Username != "u" || imgs.auth.Password != "p" {
		t.Fatalf("PullImage = %v, %v (pulled %q with %+v)", pr, err, imgs.pulled, imgs.auth)
	}
	fs, err := is.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil || len(fs.ImageFilesystems) != 1 || fs.ImageFilesystems[0].UsedBytes.GetValue() != 1234 || fs.ImageFilesystems[0].FsId.GetMountpoint() != "/store" {
		t.Fatalf("ImageFsInfo = %v, %v", fs, err)
	}
	if _, err := is.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox:latest"}}); err != nil {
		t.Fatal(err)
	}
	if len(imgs.removed) != 1 || imgs.removed[0] != "sha256:aaa" {
		t.Errorf("RemoveImage removed %v, want the image by ID", imgs.removed)
	}
	if _, err := is.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox:latest"}}); err != nil {
		t.Errorf("RemoveImage of an image already gone = %v, want no error", err)
	}
}

func imageWithTag(tag string) imagetypes.InspectResponse {
	return imagetypes.InspectResponse{ID: "sha256:" + tag, RepoTags: []string{tag}}
}

// racingImages answers as the store does while another remove takes the
// image apart: an error that is not "not found", until it is gone.
type racingImages struct {
	fakeImages
	inspects int
}

func (r *racingImages) Inspect(ref string) (imagetypes.InspectResponse, error) {
	r.inspects++
	switch {
	case r.inspects == 1:
		return imagetypes.InspectResponse{ID: "sha256:bbb"}, nil
	case r.inspects < 4:
		return imagetypes.InspectResponse{}, errors.New("image bbb has no config: image not known")
	}
	return imagetypes.InspectResponse{}, errdefs.NotFoundf("No such image: %s", ref)
}

func (r *racingImages) Remove(string, bool, bool) ([]imagetypes.DeleteResponse, error) {
	return nil, errors.New("image bbb has no config: image not known")
}

// TestRemoveImageRacing: a RemoveImage that loses to another one at the
// same time succeeds, as critest's simultaneous removals want.
func TestRemoveImageRacing(t *testing.T) {
	imgs := &racingImages{}
	is := runtimeapi.NewImageServiceClient(serve(t, New(Backends{Images: imgs}, quiet)))
	if _, err := is.RemoveImage(context.Background(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: "x"}}); err != nil {
		t.Errorf("RemoveImage racing another: %v", err)
	}
}

package cri

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/image"
)

// Images is the image store the Docker API uses (*daemon.Images fits), so
// an image pulled, loaded or built with docker is there for pods.
type Images interface {
	List(all bool, filters map[string][]string) ([]imagetypes.Summary, error)
	Inspect(ref string) (imagetypes.InspectResponse, error)
	Remove(ref string, force, noPrune bool) ([]imagetypes.DeleteResponse, error)
	// Pull returns the pulled image's ID.
	Pull(ctx context.Context, ref, platform string, auth *registry.AuthConfig, p image.ProgressSink) (string, error)
	// Import is docker import: a rootfs tar as a one-layer image named ref.
	Import(ctx context.Context, r io.Reader, ref string, changes []string, message, platform string, p image.ProgressSink) (string, error)
	// LayersSize is the size of every layer in the store, each once.
	LayersSize() int64
}

// ListImages lists the store's images, or the one the filter names.
func (s *Server) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	if ref := req.GetFilter().GetImage().GetImage(); ref != "" {
		img, err := s.b.Images.Inspect(ref)
		if errors.Is(err, errdefs.ErrNotFound) {
			return &runtimeapi.ListImagesResponse{}, nil
		}
		if err != nil {
			return nil, err
		}
		return &runtimeapi.ListImagesResponse{Images: []*runtimeapi.Image{criImage(img)}}, nil
	}
	sums, err := s.b.Images.List(false, nil)
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ListImagesResponse{}
	for _, sum := range sums {
		img, err := s.b.Images.Inspect(sum.ID)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // removed since the list
		}
		if err != nil {
			return nil, err
		}
		resp.Images = append(resp.Images, criImage(img))
	}
	return resp, nil
}

// ImageStatus is one image, or an empty answer when it is not there (the
// kubelet then pulls it).
func (s *Server) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	img, err := s.b.Images.Inspect(req.GetImage().GetImage())
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ImageStatusResponse{Image: criImage(img)}
	if req.GetVerbose() {
		b, err := json.Marshal(img)
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": string(b)}
	}
	return resp, nil
}

// PullImage pulls with the request's credentials (none: the user's own, as
// docker pull has them).
func (s *Server) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, errdefs.InvalidArgumentf("no image to pull")
	}
	var auth *registry.AuthConfig
	if a := req.GetAuth(); a != nil {
		auth = &registry.AuthConfig{
			Username: a.Username, Password: a.Password, Auth: a.Auth,
			ServerAddress: a.ServerAddress, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
		}
	}
	id, err := s.b.Images.Pull(ctx, ref, "", auth, nil)
	if err != nil {
		return nil, err
	}
	// The store answers the bare hex; the CRI's image_ref is the ID
	// ImageStatus, ListImages and ContainerStatus give, digest and all
	// (critest's image identifier consistency checks it).
	if !strings.HasPrefix(id, "sha256:") {
		id = "sha256:" + id
	}
	return &runtimeapi.PullImageResponse{ImageRef: id}, nil
}

// RemoveImage removes an image with every name it has; one already gone
// is no error (the CRI's calls are idempotent).
func (s *Server) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref := req.GetImage().GetImage()
	img, err := s.b.Images.Inspect(ref)
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.RemoveImageResponse{}, nil
	}
	if err != nil {
		if s.imageGone(ref) {
			return &runtimeapi.RemoveImageResponse{}, nil
		}
		return nil, err
	}
	// By ID with force, as dockershim did: an image with several tags is
	// removed whole, and one a container runs still refuses.
	if _, err := s.b.Images.Remove(img.ID, true, false); err != nil && !errors.Is(err, errdefs.ErrNotFound) && !s.imageGone(img.ID) {
		return nil, err
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

// imageGone says whether ref is gone after a call on it failed: a remove
// running at the same time (the kubelet's image GC beside a user's) makes
// the store answer errors other than "not found" while it takes the
// image apart, and the CRI's RemoveImage is idempotent.
func (s *Server) imageGone(ref string) bool {
	for i := range 20 {
		_, err := s.b.Images.Inspect(ref)
		if err == nil {
			return false
		}
		if errors.Is(err, errdefs.ErrNotFound) {
			return true
		}
		time.Sleep(time.Duration(i+1) * 10 * time.Millisecond)
	}
	return false
}

// ImageFsInfo reports the space the image layers take, each layer once,
// on the filesystem of the store.
func (s *Server) ImageFsInfo(ctx context.Context, _ *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	fs := &runtimeapi.FilesystemUsage{
		Timestamp: time.Now().UnixNano(),
		FsId:      &runtimeapi.FilesystemIdentifier{Mountpoint: s.b.ImageRoot},
		UsedBytes: &runtimeapi.UInt64Value{Value: uint64(max(s.b.Images.LayersSize(), 0))},
		// Counting the layers' inodes means walking them; not done yet.
		InodesUsed: &runtimeapi.UInt64Value{},
	}
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{fs}}, nil
}

// criImage is an image as the CRI shows it.
func criImage(img imagetypes.InspectResponse) *runtimeapi.Image {
	out := &runtimeapi.Image{
		Id:          img.ID,
		RepoTags:    img.RepoTags,
		RepoDigests: img.RepoDigests,
		Size:        uint64(max(img.Size, 0)),
		Spec:        &runtimeapi.ImageSpec{Image: img.ID},
	}
	if img.Config != nil && img.Config.User != "" {
		user, _, _ := strings.Cut(img.Config.User, ":")
		if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
			out.Uid = &runtimeapi.Int64Value{Value: uid}
		} else {
			out.Username = user
		}
	}
	return out
}

package daemon

import (
	"context"
	"io"

	imagetypes "github.com/moby/moby/api/types/image"

	"github.com/lodge-containers/lodge/image"
)

// Images is the image service as the API sees it: the image store, told
// which images containers use.
type Images struct {
	*image.Service
	Containers *Containers
}

// List is `docker images`, with each image's container count.
func (i *Images) List(opts image.ListOptions) ([]imagetypes.Summary, error) {
	opts.InUse = i.Containers.ImageUsers
	return i.Service.List(opts)
}

// Remove is `docker rmi`; an image a container uses is a conflict.
func (i *Images) Remove(ref string, force bool) ([]imagetypes.DeleteResponse, error) {
	return i.Service.Remove(ref, image.RemoveOptions{Force: force, UsedBy: i.Containers.ImageUser})
}

// Prune is `docker image prune`.
func (i *Images) Prune(all bool) ([]imagetypes.DeleteResponse, uint64, error) {
	return i.Service.Prune(all, i.Containers.ImageUser)
}

// Load is `docker load`.
func (i *Images) Load(ctx context.Context, r io.Reader, w io.Writer) error {
	return i.Service.Load(ctx, r, image.NewProgress(w))
}

package daemon

import (
	"context"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/image"
)

// DiskUsage is GET /system/df's answer in the shape API versions before
// 1.52 give it (lodge speaks up to 1.51).
type DiskUsage struct {
	LayersSize int64
	Images     []imagetypes.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

// layerSizer knows the size of a container's writable layer.
type layerSizer interface {
	LayerSize(id string) (int64, error)
}

// rootfsSizer knows the size of a container's writable layer and of its
// whole filesystem.
type rootfsSizer interface {
	RootfsSize(id string) (rw, rootfs int64, err error)
}

// Sizes is Docker's SizeRw and SizeRootFs of container ref (inspect and
// list with size=1): what its writable layer holds, and that with its
// image's layers.
func (s *Containers) Sizes(ref string) (rw, rootfs int64, err error) {
	c, err := s.recs.get(ref)
	if err != nil {
		return 0, 0, err
	}
	rs, ok := s.Rootfs.(rootfsSizer)
	if !ok {
		return 0, 0, errdefs.NotImplementedf("this storage cannot size a container's filesystem")
	}
	return rs.RootfsSize(c.ID)
}

// DiskUsage adds up what images, containers and volumes take.
func (i *Images) DiskUsage(ctx context.Context) (DiskUsage, error) {
	du := DiskUsage{LayersSize: i.Service.LayersSize(), BuildCache: []build.CacheRecord{}, Volumes: []volume.Volume{}}
	// Counted here, as Docker counts them for df: the containers of
	// each image and what it shares with others.
	imgs, err := i.Service.List(image.ListOptions{All: true, InUse: i.Containers.recs.imageUserCount, SharedSize: true})
	if err != nil {
		return du, err
	}
	du.Images = imgs
	cs, err := i.Containers.List(ListOptions{All: true})
	if err != nil {
		return du, err
	}
	if ls, ok := i.Containers.Rootfs.(layerSizer); ok {
		for k := range cs {
			if n, err := ls.LayerSize(cs[k].ID); err == nil {
				cs[k].SizeRw = n
			}
		}
	}
	du.Containers = cs
	if v := i.Containers.Volumes; v != nil {
		du.Volumes = v.Usage(ctx)
	}
	return du, nil
}

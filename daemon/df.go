package daemon

import (
	"context"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
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

// DiskUsage adds up what images, containers and volumes take.
func (i *Images) DiskUsage(ctx context.Context) (DiskUsage, error) {
	du := DiskUsage{LayersSize: i.Service.LayersSize(), BuildCache: []build.CacheRecord{}, Volumes: []volume.Volume{}}
	imgs, err := i.List(true, nil)
	if err != nil {
		return du, err
	}
	for k := range imgs {
		imgs[k].SharedSize = -1
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

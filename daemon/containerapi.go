package daemon

import (
	"context"
	"io"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/lodge-containers/lodge/daemon/files"
	"github.com/lodge-containers/lodge/daemon/logs"
	"github.com/lodge-containers/lodge/daemon/stats"
)

// ContainerAPI is what the API's container routes are served by: the
// container service and the services cut out of it, each reached through
// its own type. Of its own it adds only the events Docker publishes about
// what those services do (cp, export, top).
type ContainerAPI struct {
	*Containers
	*Lifecycle // Start, Stop, Kill, Restart, WaitFor, StartOnBoot
	*logs.Reader
	*files.Service
	*stats.Sampler
	*netGlue       // RemoveLink
	*CgroupControl // Pause, Unpause, Update
}

// NewContainerAPI gathers the services the container routes use.
func NewContainerAPI(s *Containers) ContainerAPI {
	return ContainerAPI{Containers: s, Lifecycle: s.lifecycle, Reader: logs.New(logHost{s}), Service: files.New(filesHost{s}), Sampler: newSampler(s), netGlue: s.net, CgroupControl: s.control}
}

// ArchivePath is files' ArchivePath (docker cp out of a container), then
// announced as Docker announces it: archive-path, with the path.
func (a ContainerAPI) ArchivePath(ctx context.Context, ref, p string, head func(container.PathStat) (io.Writer, error)) error {
	if err := a.Service.ArchivePath(ctx, ref, p, head); err != nil {
		return err
	}
	a.Containers.announce(ref, events.ActionArchivePath, "path", p)
	return nil
}

// ExtractToPath is files' ExtractToPath (docker cp into a container), then
// announced as extract-to-dir, with the path.
func (a ContainerAPI) ExtractToPath(ctx context.Context, ref, p string, rd io.Reader, opts files.ExtractOptions) error {
	if err := a.Service.ExtractToPath(ctx, ref, p, rd, opts); err != nil {
		return err
	}
	a.Containers.announce(ref, events.ActionExtractToDir, "path", p)
	return nil
}

// Export is files' Export, then announced as export.
func (a ContainerAPI) Export(ctx context.Context, ref string, w io.Writer) error {
	if err := a.Service.Export(ctx, ref, w); err != nil {
		return err
	}
	a.Containers.announce(ref, events.ActionExport)
	return nil
}

// Top is the sampler's Top, then announced as top.
func (a ContainerAPI) Top(ctx context.Context, ref, psArgs string) (container.TopResponse, error) {
	out, err := a.Sampler.Top(ctx, ref, psArgs)
	if err == nil {
		a.Containers.announce(ref, events.ActionTop)
	}
	return out, err
}

package buildkitd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	ctdsnapshot "github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/plugins/snapshots/native"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay/overlayutils"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/executor/oci"
	"github.com/moby/buildkit/exporter"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/util/network/netproviders"
	"github.com/moby/buildkit/util/resolver"
	"github.com/moby/buildkit/worker"
	"github.com/moby/buildkit/worker/base"
	"github.com/moby/buildkit/worker/runc"
)

// snapshotter picks overlay when the kernel mounts it here, as lodge's own
// storage does (containerd's overlay snapshotter adds userxattr by itself
// in a user namespace), else native copies, which always work but cost a
// full copy per step.
func snapshotter(root string, log *slog.Logger) runc.SnapshotterFactory {
	if err := overlayutils.Supported(root); err == nil {
		return runc.SnapshotterFactory{Name: "overlayfs", New: func(root string) (ctdsnapshot.Snapshotter, error) {
			return overlay.NewSnapshotter(root, overlay.AsynchronousRemove)
		}}
	} else {
		log.Info("overlay is not usable for BuildKit's snapshots, copying instead (native)", "err", err)
	}
	return runc.SnapshotterFactory{Name: "native", New: native.NewSnapshotter}
}

// gcPolicy keeps the cache from growing without bound: temporary sources
// (build contexts, cache mounts) unused for two days once they pass 512
// MiB, everything past 10 GiB oldest first. `docker buildx prune` removes
// the rest on demand. The first rule needs its size cap, as in BuildKit's
// own default: with none, a GC prunes every matching record that has no
// last-use time, whatever its age.
func gcPolicy() []client.PruneInfo {
	return []client.PruneInfo{
		{Filter: []string{"type==source.local,type==exec.cachemount,type==source.git.checkout"}, KeepDuration: 48 * time.Hour, MaxUsedSpace: 512 << 20},
		{All: true, MaxUsedSpace: 10 << 30},
	}
}

// newWorker assembles BuildKit's runc worker under root. Rootless because
// the helper runs as uid 0 of lodged's user namespace: runc must not touch
// cgroups it cannot write and must use the rootless spec. RUN steps share
// the helper's network namespace ("host" provider): that is lodged's
// namespace, behind lodge's user-mode network, not the machine's.
func newWorker(ctx context.Context, root, runcBinary, lodgeSocket string, loader Loader, log *slog.Logger) (worker.Worker, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	opt, err := runc.NewWorkerOpt(root, snapshotter(root, log), true, oci.ProcessSandbox, nil, nil,
		netproviders.Opt{Mode: "host"}, nil, runcBinary, "", false, nil, "", "", nil)
	if err != nil {
		return nil, fmt.Errorf("buildkit worker: %w", err)
	}
	opt.GCPolicy = gcPolicy()
	opt.RegistryHosts = localFirst(lodgeSocket, resolver.NewRegistryConfig(nil))
	w, err := base.NewWorker(ctx, opt)
	if err != nil {
		return nil, fmt.Errorf("buildkit worker: %w", err)
	}
	return &lodgeWorker{Worker: w, loader: loader}, nil
}

// lodgeWorker is BuildKit's worker plus the "moby" exporter, which buildx's
// docker driver asks for when the daemon has no containerd image store.
type lodgeWorker struct {
	*base.Worker
	loader Loader
}

// mobyExporterName is the exporter type buildx sends for `--load`, `-t`
// or a plain `docker build` through the docker driver.
const mobyExporterName = "moby"

func (w *lodgeWorker) Exporter(name string, sm *session.Manager) (exporter.Exporter, error) {
	if name != mobyExporterName {
		return w.Worker.Exporter(name, sm)
	}
	img, err := w.Worker.Exporter(client.ExporterImage, sm)
	if err != nil {
		return nil, err
	}
	return &mobyExporter{image: img, content: w.ContentStore(), loader: w.loader}, nil
}

var _ worker.Worker = (*lodgeWorker)(nil)

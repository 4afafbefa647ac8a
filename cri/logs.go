package cri

import (
	"context"
	"os"
	"path/filepath"

	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lodge-containers/lodge/daemon"
	"github.com/lodge-containers/lodge/errdefs"
)

// logReopener is the containers backend's ability to have a running
// container's monitor reopen its log (daemon.Lifecycle has it); found
// by type assertion so that backends without it answer "not built".
type logReopener interface {
	ReopenLog(ref string) error
}

var _ logReopener = daemon.ContainerAPI{}

// criLogConfig is the k8s-file log driver writing the CRI's log format at
// the kubelet's path: the sandbox's log directory joined with the
// container's log path. The directory is made now, as containerd does,
// so that a path lodge cannot write fails the create, not the start.
func criLogConfig(logDir, logPath string) (container.LogConfig, string, error) {
	p := filepath.Join(logDir, logPath)
	if !filepath.IsAbs(p) {
		return container.LogConfig{}, "", errdefs.InvalidArgumentf("log path %q: the sandbox's log directory must be absolute", p)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return container.LogConfig{}, "", errdefs.InvalidArgumentf("log directory: %v", err)
	}
	return container.LogConfig{Type: "k8s-file", Config: map[string]string{"path": p}}, p, nil
}

// ReopenContainerLog has a running container's monitor close its log file
// and open a new one at the same path: the kubelet renamed the file to
// rotate it.
func (s *Server) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	c, err := s.ctr(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	r, ok := s.b.Containers.(logReopener)
	if !ok {
		return nil, unimplemented("ReopenContainerLog")
	}
	if err := r.ReopenLog(c.ID); err != nil {
		return nil, err
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}

package daemon

import (
	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/errdefs"
)

// logDriver is the one log driver lodge has: its monitor writes Docker's
// json-file format.
const logDriver = "json-file"

// settleLogConfig fills in the log driver as Docker fills in its default,
// so clients that read HostConfig.LogConfig.Type to decide whether they
// can read logs back (docker-py's containers.run) see json-file; it
// refuses the drivers lodge does not have.
func settleLogConfig(hc *container.HostConfig) error {
	switch hc.LogConfig.Type {
	case "":
		hc.LogConfig.Type = logDriver
	case logDriver:
	default:
		return errdefs.NotImplementedf("log driver %q: lodge writes json-file logs only", hc.LogConfig.Type)
	}
	return nil
}

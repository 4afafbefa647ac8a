package daemon

import (
	"fmt"
	"sort"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/errdefs"
)

// logDriver is the one log driver lodge has: its monitor writes Docker's
// json-file format.
const logDriver = "json-file"

// settleLogConfig fills in the log driver as Docker fills in its default,
// so clients that read HostConfig.LogConfig.Type to decide whether they
// can read logs back (docker-py's containers.run) see json-file; it
// refuses the drivers lodge does not have. lodge does not rotate its
// json-file logs yet: options such as max-size and max-file are kept in
// the record but not applied, and each one gets a warning saying so
// rather than a silent success.
func settleLogConfig(hc *container.HostConfig) (warnings []string, err error) {
	switch hc.LogConfig.Type {
	case "":
		hc.LogConfig.Type = logDriver
	case logDriver:
	default:
		return nil, errdefs.NotImplementedf("log driver %q: lodge writes json-file logs only", hc.LogConfig.Type)
	}
	keys := make([]string, 0, len(hc.LogConfig.Config))
	for k := range hc.LogConfig.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		warnings = append(warnings, fmt.Sprintf("log option %s is not applied: lodge does not rotate or tag json-file logs yet", k))
	}
	return warnings, nil
}

package daemon

import (
	"fmt"
	"sort"
	"strconv"

	units "github.com/docker/go-units"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/errdefs"
)

// logDriver is the one log driver lodge has: its monitor writes Docker's
// json-file format.
const logDriver = "json-file"

// settleLogConfig fills in the log driver as Docker fills in its default,
// so clients that read HostConfig.LogConfig.Type to decide whether they
// can read logs back (docker-py's containers.run) see json-file; it
// refuses the drivers lodge does not have, and checks max-size and
// max-file as Docker's json-file driver does. Options lodge does not
// apply (compress, labels, env, tag) each get a warning rather than a
// silent success.
func settleLogConfig(hc *container.HostConfig) (warnings []string, err error) {
	switch hc.LogConfig.Type {
	case "":
		hc.LogConfig.Type = logDriver
	case logDriver:
	default:
		return nil, errdefs.NotImplementedf("log driver %q: lodge writes json-file logs only", hc.LogConfig.Type)
	}
	if _, _, err := logRotation(hc.LogConfig.Config); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(hc.LogConfig.Config))
	for k := range hc.LogConfig.Config {
		switch k {
		case "max-size", "max-file":
			continue
		case "compress", "labels", "labels-regex", "env", "env-regex", "tag":
			keys = append(keys, k)
		default:
			return nil, errdefs.InvalidArgumentf("unknown log opt '%s' for json-file log driver", k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		warnings = append(warnings, fmt.Sprintf("log option %s is not applied: lodge's json-file logs rotate (max-size, max-file) but do not %s yet", k, notApplied(k)))
	}
	return warnings, nil
}

func notApplied(k string) string {
	if k == "compress" {
		return "compress rotated files"
	}
	return "carry labels, env or tags"
}

// logRotation reads max-size and max-file as Docker's json-file driver
// does: max-size in bytes with k/m/g units (absent: no rotation), max-file
// at least 1 (default 1) and only with max-size.
func logRotation(opts map[string]string) (maxSize int64, maxFiles int, err error) {
	maxFiles = 1
	if s, ok := opts["max-size"]; ok {
		if maxSize, err = units.FromHumanSize(s); err != nil {
			return 0, 0, errdefs.InvalidArgumentf("invalid max-size %q: %v", s, err)
		}
		if maxSize <= 0 {
			return 0, 0, errdefs.InvalidArgumentf("max-size must be a positive number")
		}
	}
	if s, ok := opts["max-file"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, 0, errdefs.InvalidArgumentf("invalid max-file %q: %v", s, err)
		}
		if n < 1 {
			return 0, 0, errdefs.InvalidArgumentf("max-file cannot be less than 1")
		}
		if n > 1 && maxSize == 0 {
			return 0, 0, errdefs.InvalidArgumentf("max-file cannot be set when max-size is not set")
		}
		maxFiles = n
	}
	return maxSize, maxFiles, nil
}

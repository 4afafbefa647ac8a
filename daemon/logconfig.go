package daemon

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"

	units "github.com/docker/go-units"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/shim"
)

// logDriver is the default log driver: the monitor writes Docker's
// json-file format. "local" (Docker's own default file format, with
// rotation), "k8s-file" (the CRI's log format, Podman's name for the
// driver, at a path of the user's or the kubelet's) and "none" are the
// others lodge has.
const (
	logDriver      = "json-file"
	logDriverLocal = "local"
	logDriverK8s   = "k8s-file"
	logDriverNone  = "none"
)

// logOptPath is k8s-file's option naming its file.
const logOptPath = "path"

// settleLogConfig fills in the log driver as Docker fills in its default,
// so clients that read HostConfig.LogConfig.Type to decide whether they
// can read logs back (docker-py's containers.run) see json-file; it
// refuses the drivers lodge does not have, and checks each driver's
// options as Docker does. json-file's labels, env and tag options become
// its lines' attributes (logAttrs); compress, which lodge does not apply,
// gets a warning rather than a silent success.
func settleLogConfig(hc *container.HostConfig) (warnings []string, err error) {
	switch hc.LogConfig.Type {
	case "":
		hc.LogConfig.Type = logDriver
	case logDriver, logDriverLocal, logDriverK8s:
	case logDriverNone:
		return nil, nil
	default:
		return nil, errdefs.NotImplementedf("log driver %q: lodge writes json-file, local and k8s-file logs, or none", hc.LogConfig.Type)
	}
	if _, _, err := rotationFor(hc.LogConfig); err != nil {
		return nil, err
	}
	if hc.LogConfig.Type == logDriver {
		if err := checkLogAttrOpts(hc.LogConfig); err != nil {
			return nil, err
		}
	}
	keys := make([]string, 0, len(hc.LogConfig.Config))
	for k := range hc.LogConfig.Config {
		switch {
		case k == "max-size", k == "max-file":
			continue
		case k == logOptPath && hc.LogConfig.Type == logDriverK8s:
			// The monitor writes it, in lodged's mount namespace: only an
			// absolute path means the same file to the user.
			if p := hc.LogConfig.Config[k]; !filepath.IsAbs(p) {
				return nil, errdefs.InvalidArgumentf("k8s-file log option path %q: the log's path must be absolute", p)
			}
			hc.LogConfig.Config[k] = filepath.Clean(hc.LogConfig.Config[k])
			continue
		case k == "compress" && hc.LogConfig.Type == logDriverLocal:
			// Docker's local driver compresses rotated files by default;
			// lodge keeps them as they are: only an explicit ask warns.
			if _, err := strconv.ParseBool(hc.LogConfig.Config[k]); err != nil {
				return nil, errdefs.InvalidArgumentf("error reading compress log option: %v", err)
			}
			keys = append(keys, k)
		case hc.LogConfig.Type == logDriver && (k == "labels" || k == "labels-regex" || k == "env" || k == "env-regex" || k == "tag"):
			continue // the lines' attributes (logAttrs)
		case hc.LogConfig.Type == logDriver && k == "compress":
			keys = append(keys, k)
		default:
			return nil, errdefs.InvalidArgumentf("unknown log opt '%s' for %s log driver", k, hc.LogConfig.Type)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		warnings = append(warnings, fmt.Sprintf("log option %s is not applied: lodge's %s logs rotate (max-size, max-file) but do not compress rotated files yet", k, hc.LogConfig.Type))
	}
	return warnings, nil
}

// rotationFor is a log config's rotation: json-file's as logRotation
// reads it; the local driver's with Docker's defaults (20 MB, 5 files)
// where not given.
func rotationFor(lc container.LogConfig) (maxSize int64, maxFiles int, err error) {
	if lc.Type != logDriverLocal {
		return logRotation(lc.Config)
	}
	maxSize, maxFiles = 20*1024*1024, 5
	if s, ok := lc.Config["max-size"]; ok {
		if maxSize, err = units.FromHumanSize(s); err != nil {
			return 0, 0, errdefs.InvalidArgumentf("invalid value for max-size: %s: %v", s, err)
		}
		if maxSize < 0 {
			return 0, 0, errdefs.InvalidArgumentf("max size should be a positive number")
		}
	}
	if s, ok := lc.Config["max-file"]; ok {
		if maxFiles, err = strconv.Atoi(s); err != nil {
			return 0, 0, errdefs.InvalidArgumentf("invalid value for max-file: %s: %v", s, err)
		}
		if maxFiles < 0 {
			return 0, 0, errdefs.InvalidArgumentf("max file count cannot be less than 0")
		}
	}
	return maxSize, maxFiles, nil
}

// logFormat is the monitor's log format for a container's driver.
func logFormat(lc container.LogConfig) string {
	switch lc.Type {
	case logDriverLocal:
		return shim.LogLocal
	case logDriverNone:
		return shim.LogNone
	case logDriverK8s:
		return shim.LogK8sFile
	}
	return ""
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

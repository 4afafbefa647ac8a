package daemon

import (
	"strconv"
	"strings"

	"github.com/lodge-containers/lodge/errdefs"
)

// securityOpts is what a container's --security-opt list asks for.
type securityOpts struct {
	noNewPrivileges bool
	seccomp         string // "" (the default profile), "unconfined" or a profile's JSON
	systemPaths     bool   // systempaths=unconfined: /proc and /sys unmasked and writable
}

// parseSecurityOpts reads hc.SecurityOpt as Docker does, starting from
// the daemon's no-new-privileges default: "no-new-privileges" alone sets
// it, "no-new-privileges=BOOL" sets or clears it, and the legacy ":"
// separator is still accepted. Options a user namespace cannot honour
// (SELinux labels, AppArmor profiles) are accepted and do nothing, as
// on a host without those modules; anything else is refused, at create.
func parseSecurityOpts(list []string, nnpDefault bool) (securityOpts, error) {
	o := securityOpts{noNewPrivileges: nnpDefault}
	for _, so := range list {
		if so == "no-new-privileges" {
			o.noNewPrivileges = true
			continue
		}
		if so == "disable" { // label=disable's old spelling
			continue
		}
		k, v, ok := strings.Cut(so, "=")
		if !ok {
			if k, v, ok = strings.Cut(so, ":"); !ok {
				return o, errdefs.InvalidArgumentf("invalid --security-opt 1: %q", so)
			}
		}
		switch k {
		case "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, errdefs.InvalidArgumentf("invalid --security-opt 2: %q", so)
			}
			o.noNewPrivileges = b
		case "seccomp":
			// "unconfined", or the profile's content (the docker CLI
			// reads the file and sends what it holds).
			o.seccomp = v
		case "systempaths":
			if v != "unconfined" {
				return o, errdefs.InvalidArgumentf("invalid --security-opt 2: %q: only \"unconfined\" is supported", so)
			}
			o.systemPaths = true
		case "label", "apparmor":
			// No SELinux or AppArmor confinement in a user namespace.
		default:
			return o, errdefs.InvalidArgumentf("invalid --security-opt 2: %q", so)
		}
	}
	return o, nil
}

package daemon

import (
	"encoding/json"

	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/errdefs"
)

// What a create's request becomes before it is a record: the image's
// config merged under it, its values checked as Docker checks them, and a
// name when it has none. (Not lodged's configuration: that is daemon.json,
// read in cmd/lodged.)

func jsonMarshal(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }

// mergeImageConfig fills what the request left out from the image, as
// Docker does: command, entrypoint, environment (image first, request
// wins), working dir, user, labels, exposed ports, volumes, stop signal.
func mergeImageConfig(req *container.Config, img *v1.Image) *container.Config {
	c := *req
	if img == nil {
		c.Env = mergeEnv(nil, c.Env)
		return &c
	}
	ic := img.Config
	if len(c.Entrypoint) == 0 && len(c.Cmd) == 0 {
		c.Cmd = ic.Cmd
	}
	if c.Entrypoint == nil {
		c.Entrypoint = ic.Entrypoint
	}
	c.Env = mergeEnv(ic.Env, c.Env)
	if c.WorkingDir == "" {
		c.WorkingDir = ic.WorkingDir
	}
	if c.User == "" {
		c.User = ic.User
	}
	if c.StopSignal == "" {
		c.StopSignal = ic.StopSignal
	}
	if len(ic.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range ic.Labels {
			labels[k] = v
		}
		for k, v := range c.Labels {
			labels[k] = v
		}
		c.Labels = labels
	}
	if len(ic.ExposedPorts) > 0 {
		// The image's EXPOSE belongs to the container's config, as in
		// Docker: -P publishes it and commit carries it on. A port the
		// image names badly is left out rather than failing the create.
		ports := network.PortSet{}
		for k := range ic.ExposedPorts {
			if p, err := network.ParsePort(k); err == nil {
				ports[p] = struct{}{}
			}
		}
		for p := range c.ExposedPorts {
			ports[p] = struct{}{}
		}
		c.ExposedPorts = ports
	}
	if len(ic.Volumes) > 0 {
		// The image's VOLUMEs and the request's (-v /path), together: the
		// docker CLI sends an empty map, not none.
		vols := map[string]struct{}{}
		for k := range ic.Volumes {
			vols[k] = struct{}{}
		}
		for k := range c.Volumes {
			vols[k] = struct{}{}
		}
		c.Volumes = vols
	}
	return &c
}

// mergeEnv lays overrides over base: a KEY=value replaces the key's
// entry in place or is appended; a bare KEY unsets it, as Docker reads
// compose's `environment: [KEY]` and `exec -e KEY` when the client has no
// KEY to send. The result never holds an entry without "=", which the
// runtime would refuse.
func mergeEnv(base, overrides []string) []string {
	at := map[string]int{}
	var out []string
	set := func(kv string) {
		k, _, ok := strings.Cut(kv, "=")
		i, seen := at[k]
		switch {
		case !ok && seen:
			out[i] = ""
			delete(at, k)
		case !ok:
		case seen:
			out[i] = kv
		default:
			at[k] = len(out)
			out = append(out, kv)
		}
	}
	for _, kv := range base {
		set(kv)
	}
	for _, kv := range overrides {
		set(kv)
	}
	kept := out[:0]
	for _, kv := range out {
		if kv != "" {
			kept = append(kept, kv)
		}
	}
	return kept
}

// command splits entrypoint+cmd into Docker's Path and Args.
func command(c *container.Config) (string, []string) {
	argv := append(append([]string{}, c.Entrypoint...), c.Cmd...)
	if len(argv) == 0 {
		return "", nil
	}
	return argv[0], argv[1:]
}

func validateEnv(env []string) error {
	for _, kv := range env {
		if strings.HasPrefix(kv, "=") || kv == "" {
			return errdefs.InvalidArgumentf("invalid environment variable: %q", kv)
		}
	}
	return nil
}

func validateHostConfig(hc *container.HostConfig) error {
	switch hc.RestartPolicy.Name {
	case "", container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if hc.RestartPolicy.MaximumRetryCount != 0 {
			return errdefs.InvalidArgumentf("invalid restart policy: maximum retry count can only be used with 'on-failure'")
		}
	case container.RestartPolicyOnFailure:
		if hc.RestartPolicy.MaximumRetryCount < 0 {
			return errdefs.InvalidArgumentf("invalid restart policy: maximum retry count cannot be negative")
		}
	default:
		return errdefs.InvalidArgumentf("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", hc.RestartPolicy.Name)
	}
	if hc.AutoRemove && hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != container.RestartPolicyDisabled {
		return errdefs.InvalidArgumentf("can't create 'AutoRemove' container with restart policy")
	}
	if hc.ShmSize < 0 {
		return errdefs.InvalidArgumentf("SHM size can not be less than 0")
	}
	if _, err := parseSecurityOpts(hc.SecurityOpt, false); err != nil {
		return err
	}
	for target := range hc.Tmpfs {
		if !strings.HasPrefix(target, "/") {
			return errdefs.InvalidArgumentf("invalid mount config for type \"tmpfs\": invalid mount path: '%s' mount path must be absolute", target)
		}
	}
	return nil
}

// minHealthDuration is the shortest healthcheck duration Docker accepts.
const minHealthDuration = time.Millisecond

// validateHealthcheck refuses what Docker refuses at create: durations
// below a millisecond (0 means the default) and negative retries.
func validateHealthcheck(h *container.HealthConfig) error {
	if h == nil {
		return nil
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Interval", h.Interval}, {"Timeout", h.Timeout}, {"StartPeriod", h.StartPeriod}, {"StartInterval", h.StartInterval}} {
		if d.v != 0 && d.v < minHealthDuration {
			return errdefs.InvalidArgumentf("%s in Healthcheck cannot be less than %s", d.name, minHealthDuration)
		}
	}
	if h.Retries < 0 {
		return errdefs.InvalidArgumentf("Retries in Healthcheck cannot be negative")
	}
	return nil
}

// parseSignal takes "SIGHUP", "HUP" or "1".
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.InvalidArgumentf("invalid signal: %s", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, errdefs.InvalidArgumentf("invalid signal: %s", s)
}

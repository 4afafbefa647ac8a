package image

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/internal/platform"
)

// Import is `docker import`: a rootfs tar (compressed or not) becomes a
// one-layer image.
func (a *Archives) Import(ctx context.Context, r io.Reader, opts ImportOptions, p ProgressSink) (string, error) {
	p = orDiscard(p)
	var names []string
	if opts.Ref != "" {
		n, err := ParseName(opts.Ref)
		if err != nil {
			return "", err
		}
		if err := checkNewName(n); err != nil {
			return "", err
		}
		names = []string{n.String()}
	}
	plat := ocispec.Platform{OS: "linux", Architecture: goarch()}
	if pp, err := platform.Parse(opts.Platform); err != nil {
		return "", err
	} else if pp != nil {
		plat = *pp
	}
	if !strings.EqualFold(plat.OS, "linux") {
		return "", errdefs.InvalidArgumentf("operating system is not supported")
	}
	var cfg dockerspec.DockerOCIImageConfig
	for _, c := range opts.Changes {
		if err := applyChange(&cfg, c); err != nil {
			return "", err
		}
	}
	l, err := a.images.putLayer("", r)
	if err != nil {
		return "", errdefs.InvalidArgumentf("importing the rootfs: %v", err)
	}
	now := time.Now().UTC()
	comment := "Imported from -"
	if opts.Message != "" {
		comment = opts.Message
	}
	img := dockerspec.DockerOCIImage{
		Image: ocispec.Image{
			Created:  &now,
			Platform: plat,
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{l.UncompressedDigest}},
			History:  []ocispec.History{{Created: &now, Comment: comment}},
		},
		Config: cfg,
	}
	raw, err := json.Marshal(img)
	if err != nil {
		return "", err
	}
	id, err := a.images.createImage(raw, l.ID, names, nil, "", now)
	if err != nil {
		a.images.dropLayer(l.ID)
		return "", err
	}
	p.Status("", "sha256:"+id)
	return id, nil
}

// applyChange applies one --change instruction to an image config.
func applyChange(c *dockerspec.DockerOCIImageConfig, change string) error {
	instr, arg, _ := strings.Cut(strings.TrimSpace(change), " ")
	arg = strings.TrimSpace(arg)
	list := func() []string {
		var l []string
		if strings.HasPrefix(arg, "[") && json.Unmarshal([]byte(arg), &l) == nil {
			return l
		}
		return []string{"/bin/sh", "-c", arg}
	}
	switch strings.ToUpper(instr) {
	case "CMD":
		c.Cmd = list()
	case "ENTRYPOINT":
		c.Entrypoint = list()
	case "ENV":
		k, v, ok := strings.Cut(arg, "=")
		if !ok {
			k, v, _ = strings.Cut(arg, " ")
		}
		k = strings.TrimSpace(k)
		// $VAR and ${VAR} from the image's environment, as the builder
		// expands them (ENV PATH=$PATH:/x); a key set again is replaced.
		v = os.Expand(strings.Trim(strings.TrimSpace(v), `"`), func(name string) string { return envValue(c.Env, name) })
		c.Env = setEnvVar(c.Env, k, v)
	case "WORKDIR":
		c.WorkingDir = arg
	case "USER":
		c.User = arg
	case "LABEL":
		k, v, _ := strings.Cut(arg, "=")
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels[k] = strings.Trim(v, `"`)
	case "EXPOSE":
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, port := range strings.Fields(arg) {
			if !strings.Contains(port, "/") {
				port += "/tcp"
			}
			c.ExposedPorts[port] = struct{}{}
		}
	case "STOPSIGNAL":
		c.StopSignal = arg
	case "VOLUME":
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		// VOLUME /a /b is a list of paths, not a shell command.
		vols := strings.Fields(arg)
		if strings.HasPrefix(arg, "[") {
			if err := json.Unmarshal([]byte(arg), &vols); err != nil {
				return errdefs.InvalidArgumentf("VOLUME %s: %v", arg, err)
			}
		}
		for _, v := range vols {
			c.Volumes[v] = struct{}{}
		}
	default:
		return errdefs.InvalidArgumentf("%s is not a valid change command", instr)
	}
	return nil
}

// envValue is name's value in a KEY=value list, "" when unset.
func envValue(env []string, name string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// setEnvVar sets key in a KEY=value list, in place when it is there.
func setEnvVar(env []string, key, value string) []string {
	out := append([]string{}, env...)
	for i, kv := range out {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			out[i] = key + "=" + value
			return out
		}
	}
	return append(out, key+"="+value)
}

package build

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func setEnv(env []string, key, value string) []string {
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}

// withShell gives CMD and ENTRYPOINT's argv: the shell form wrapped in
// SHELL, the exec form as it is.
func (s *stageRun) withShell(c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return append([]string(nil), c.CmdLine...)
	}
	if len(c.CmdLine) == 0 {
		return nil
	}
	return append(append([]string(nil), s.shell()...), strings.Join(c.CmdLine, " "))
}

// arg declares build args in the stage. The value is the build's, else
// the default, else the meta ARG's of the same name, else an automatic
// platform arg's.
func (s *stageRun) arg(c *instructions.ArgCommand) {
	words := make([]string, 0, len(c.Args))
	for _, kv := range c.Args {
		s.plan.args.consume(kv.Key)
		var v *string
		switch {
		case s.hasGiven(kv.Key):
			x, _ := s.plan.args.value(kv.Key)
			v = &x
		case kv.Value != nil:
			x := *kv.Value
			v = &x
		default:
			if x, ok := s.plan.metaArgs[kv.Key]; ok {
				v = &x
			}
		}
		if _, seen := s.args[kv.Key]; !seen {
			s.argOrder = append(s.argOrder, kv.Key)
		}
		s.args[kv.Key] = v
		if kv.Value != nil {
			words = append(words, kv.Key+"="+*kv.Value)
		} else {
			words = append(words, kv.Key)
		}
	}
	s.meta("ARG " + strings.Join(words, " "))
}

func (s *stageRun) hasGiven(name string) bool {
	_, ok := s.plan.args.value(name)
	return ok
}

func (s *stageRun) expose(c *instructions.ExposeCommand) error {
	if s.cfg.Config.ExposedPorts == nil {
		s.cfg.Config.ExposedPorts = map[string]struct{}{}
	}
	var ports []string
	for _, p := range c.Ports {
		words, err := s.lex.ProcessWords(p, s.env())
		if err != nil {
			return errdefs.InvalidArgumentf("EXPOSE: %v", err)
		}
		for _, w := range words {
			expanded, err := expandPorts(w)
			if err != nil {
				return err
			}
			for _, e := range expanded {
				s.cfg.Config.ExposedPorts[e] = struct{}{}
				ports = append(ports, e)
			}
		}
	}
	sort.Strings(ports)
	s.meta("EXPOSE " + strings.Join(ports, " "))
	return nil
}

// expandPorts turns "80", "80/udp" or "8000-8002/tcp" into port/proto words.
func expandPorts(w string) ([]string, error) {
	port, proto, _ := strings.Cut(w, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, errdefs.InvalidArgumentf("invalid proto: %s", proto)
	}
	lo, hi, isRange := strings.Cut(port, "-")
	start, err := parsePort(lo)
	if err != nil {
		return nil, err
	}
	end := start
	if isRange {
		if end, err = parsePort(hi); err != nil {
			return nil, err
		}
		if end < start {
			return nil, errdefs.InvalidArgumentf("invalid range specified for port: %s", port)
		}
	}
	var out []string
	for p := start; p <= end; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

func parsePort(s string) (int, error) {
	var p int
	if _, err := fmt.Sscanf(s, "%d", &p); err != nil || p < 0 || p > 65535 || fmt.Sprint(p) != s {
		return 0, errdefs.InvalidArgumentf("invalid containerPort: %s", s)
	}
	return p, nil
}

// workdir sets WORKDIR and makes the directory when the image lacks it,
// as Docker does; an existing directory keeps its owner and mode.
func (s *stageRun) workdir(ctx context.Context, c *instructions.WorkdirCommand, out *stepOut) error {
	dir := c.Path
	if !path.IsAbs(dir) {
		prev := s.cfg.Config.WorkingDir
		if prev == "" {
			prev = "/"
		}
		dir = path.Join(prev, dir)
	}
	dir = path.Clean(dir)
	s.cfg.Config.WorkingDir = dir
	createdBy := strings.Join(s.shell(), " ") + " #(nop) WORKDIR " + dir
	key := chainKey(s.key, "workdir", dir)
	if hit, err := s.fromCache(ctx, out, key); hit || err != nil {
		return err
	}
	t, err := s.mountTarget(ctx)
	if err != nil {
		return err
	}
	defer t.release()
	missing, err := newLayerWriter(t, nil, nil).missingDirs(dir)
	if err != nil {
		return err
	}
	if len(missing) == 0 {
		s.cfg.History = append(s.cfg.History, ocispec.History{Created: now(), CreatedBy: createdBy, EmptyLayer: true})
		s.key = key
		s.dirty = true
		return nil
	}
	return s.layer(ctx, out, key, createdBy, func(ctx context.Context, cfg dockerspec.DockerOCIImage) (Image, error) {
		return s.apply(ctx, t, nil, cfg, func(w *layerWriter) error { return w.mkdirAll(dir) })
	})
}

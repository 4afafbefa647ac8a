package build

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// state is where a stage stands after a step.
type state struct {
	img   Image                     // the last image the backend holds; zero ID is scratch
	cfg   dockerspec.DockerOCIImage // the config so far, maybe ahead of img's
	key   string                    // cache key of the steps so far
	dirty bool                      // cfg has changes img lacks: the end needs a Commit
}

// stageRun runs one stage's steps in order.
type stageRun struct {
	*buildRun
	sp  *stagePlan
	lex *shell.Lex
	state
	cmdSet   bool               // CMD given in this stage (ENTRYPOINT keeps it)
	args     map[string]*string // ARGs declared in this stage
	argOrder []string
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// cloneConfig deep-copies a config, so stages built at the same time
// from one parent never share slices or maps.
func cloneConfig(c dockerspec.DockerOCIImage) dockerspec.DockerOCIImage {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a config always marshals
	}
	var out dockerspec.DockerOCIImage
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

func now() *time.Time {
	t := time.Now().UTC()
	return &t
}

// stepError names the step an error happened in.
type stepError struct {
	step  string
	inner error
}

func (e *stepError) Error() string { return e.step + ": " + e.inner.Error() }
func (e *stepError) Unwrap() error { return e.inner }

func cmdString(cmd instructions.Command) string {
	if s, ok := cmd.(fmt.Stringer); ok {
		return s.String()
	}
	return cmd.Name()
}

// runStage runs sp; the stages it depends on are done.
func (r *buildRun) runStage(ctx context.Context, sp *stagePlan) (*state, error) {
	s := &stageRun{buildRun: r, sp: sp, lex: shell.NewLex(r.plan.escape), args: map[string]*string{}}
	n := sp.firstStep
	stepName := func(n int, text string) string { return fmt.Sprintf("Step %d/%d : %s", n, r.plan.total, text) }

	out := r.p.step()
	out.Printf("%s\n", stepName(n, sp.st.SourceCode))
	err := s.from(ctx, out)
	out.Close()
	if err != nil {
		return nil, &stepError{step: stepName(n, sp.st.SourceCode), inner: err}
	}
	for _, cmd := range sp.st.Commands {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n++
		out := r.p.step()
		out.Printf("%s\n", stepName(n, cmdString(cmd)))
		err := s.dispatch(ctx, cmd, out)
		out.Close()
		if err != nil {
			return nil, &stepError{step: stepName(n, cmdString(cmd)), inner: err}
		}
	}
	st := s.state
	return &st, nil
}

// from sets the stage's starting state and runs the base's ONBUILD
// triggers.
func (s *stageRun) from(ctx context.Context, out *stepOut) error {
	switch {
	case s.sp.baseStage != nil:
		parent, err := s.stageResult(ctx, s.sp.baseStage)
		if err != nil {
			return err
		}
		s.state = *parent
		s.cfg = cloneConfig(parent.cfg)
	case strings.EqualFold(s.sp.base, "scratch"):
		s.img = Image{}
		s.cfg = dockerspec.DockerOCIImage{}
		s.cfg.OS = "linux"
		s.cfg.Architecture = runtime.GOARCH
		s.cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}}
		s.key = chainKey("", "scratch")
		s.dirty = true
	default:
		img, err := s.b.backend.Base(ctx, s.sp.base, s.opts.Pull, out)
		if err != nil {
			return err
		}
		s.img = img
		s.cfg = cloneConfig(img.Config)
		s.key = chainKey("", "image", img.ID)
	}
	if s.img.ID != "" {
		out.Printf(" ---> %s\n", shortID(s.img.ID))
	}
	return s.onbuild(ctx, out)
}

func (s *stageRun) onbuild(ctx context.Context, out *stepOut) error {
	triggers := s.cfg.Config.OnBuild
	if len(triggers) == 0 {
		return nil
	}
	s.cfg.Config.OnBuild = nil
	s.dirty = true
	s.key = chainKey(s.key, "onbuild-consumed")
	plural := "s"
	if len(triggers) == 1 {
		plural = ""
	}
	out.Printf("# Executing %d build trigger%s\n", len(triggers), plural)
	for _, t := range triggers {
		res, err := parser.Parse(strings.NewReader(t))
		if err != nil {
			return parseError(err)
		}
		for _, node := range res.AST.Children {
			cmd, err := instructions.ParseCommand(node)
			if err != nil {
				return parseError(err)
			}
			if err := s.dispatch(ctx, cmd, out); err != nil {
				return fmt.Errorf("ONBUILD %s: %w", t, err)
			}
		}
	}
	return nil
}

// stageResult waits for an earlier stage's result.
func (s *stageRun) stageResult(ctx context.Context, sp *stagePlan) (*state, error) {
	f, ok := s.results[sp]
	if !ok {
		return nil, errdefs.InvalidArgumentf("stage %d (%s) is not part of this build", sp.index, sp.name)
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	return f.st, nil
}

// shell is the stage's SHELL.
func (s *stageRun) shell() []string {
	if len(s.cfg.Config.Shell) > 0 {
		return s.cfg.Config.Shell
	}
	return []string{"/bin/sh", "-c"}
}

// env is the environment words expand in: the ARGs declared so far, then
// ENV, which wins over an ARG of the same name.
func (s *stageRun) env() shell.EnvGetter {
	var env []string
	for _, k := range s.argOrder {
		if v := s.args[k]; v != nil {
			env = append(env, k+"="+*v)
		}
	}
	env = append(env, s.cfg.Config.Env...)
	return shell.EnvsFromSlice(env)
}

func (s *stageRun) expander() instructions.SingleWordExpander {
	env := s.env()
	return func(word string) (string, error) {
		res, _, err := s.lex.ProcessWord(word, env)
		return res, err
	}
}

func (s *stageRun) expand(cmd any) error {
	if e, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if err := e.Expand(s.expander()); err != nil {
			return errdefs.InvalidArgumentf("%v", err)
		}
	}
	return nil
}

// argEnv is the build args a RUN sees, as sorted KEY=value: the declared
// ones with a value that no ENV overrides.
func (s *stageRun) argEnv() []string {
	inEnv := map[string]bool{}
	for _, e := range s.cfg.Config.Env {
		k, _, _ := strings.Cut(e, "=")
		inEnv[k] = true
	}
	var out []string
	for _, k := range s.argOrder {
		if v := s.args[k]; v != nil && !inEnv[k] {
			out = append(out, k+"="+*v)
		}
	}
	sort.Strings(out)
	return out
}

// meta records a step that only changes the config: no backend call,
// the next layer step or the final commit makes the image.
func (s *stageRun) meta(comment string) {
	s.cfg.History = append(s.cfg.History, ocispec.History{
		Created:    now(),
		CreatedBy:  strings.Join(s.shell(), " ") + " #(nop)  " + comment,
		EmptyLayer: true,
	})
	s.key = chainKey(s.key, "meta", comment)
	s.dirty = true
}

// nextConfig is the config of the image a layer step makes.
func (s *stageRun) nextConfig(createdBy string, empty bool) dockerspec.DockerOCIImage {
	cfg := cloneConfig(s.cfg)
	t := now()
	cfg.Created = t
	cfg.History = append(cfg.History, ocispec.History{Created: t, CreatedBy: createdBy, EmptyLayer: empty})
	return cfg
}

func (s *stageRun) adopt(img Image, key string) {
	s.img = img
	s.cfg = cloneConfig(img.Config)
	s.key = key
	s.dirty = false
}

// fromCache adopts the cached image of key, unless the build says
// --no-cache, and reports whether there was one.
func (s *stageRun) fromCache(ctx context.Context, out *stepOut, key string) (bool, error) {
	if s.opts.NoCache {
		return false, nil
	}
	img, ok, err := s.b.lookup(ctx, key)
	if err != nil || !ok {
		return false, err
	}
	out.Printf(" ---> Using cache\n ---> %s\n", shortID(img.ID))
	s.adopt(img, key)
	return true, nil
}

// layer makes a step's image through exec, unless the cache has it.
func (s *stageRun) layer(ctx context.Context, out *stepOut, key, createdBy string, exec func(context.Context, dockerspec.DockerOCIImage) (Image, error)) error {
	if hit, err := s.fromCache(ctx, out, key); hit || err != nil {
		return err
	}
	img, ok := s.cacheFromHit(ctx, &ocispec.History{CreatedBy: createdBy})
	if ok {
		out.Printf(" ---> Using cache\n")
	} else {
		var err error
		if img, err = exec(ctx, s.nextConfig(createdBy, false)); err != nil {
			return err
		}
	}
	if err := s.b.cache().put(key, img.ID); err != nil {
		return err
	}
	s.adopt(img, key)
	out.Printf(" ---> %s\n", shortID(img.ID))
	return nil
}

// finish makes the stage's image: the last backend image when no config
// change is pending, else a Commit, itself cached so that a rebuild with
// nothing changed gives the same ID.
func (s *stageRun) finish(ctx context.Context, st *state, labels map[string]string) (Image, error) {
	s.state = *st
	s.cfg = cloneConfig(st.cfg)
	if len(labels) > 0 {
		keys := make([]string, 0, len(labels))
		for k := range labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if s.cfg.Config.Labels == nil {
			s.cfg.Config.Labels = map[string]string{}
		}
		var words []string
		for _, k := range keys {
			s.cfg.Config.Labels[k] = labels[k]
			words = append(words, k+"="+labels[k])
		}
		s.meta("LABEL " + strings.Join(words, " "))
	}
	if !s.dirty {
		return s.img, nil
	}
	key := chainKey(s.key, "commit")
	if !s.opts.NoCache {
		img, ok, err := s.b.lookup(ctx, key)
		if err != nil || ok {
			return img, err
		}
	}
	if img, ok := s.cacheFromHit(ctx, nil); ok {
		return img, s.b.cache().put(key, img.ID)
	}
	cfg := cloneConfig(s.cfg)
	cfg.Created = now()
	img, err := s.b.backend.Commit(ctx, s.img, cfg)
	if err != nil {
		return Image{}, err
	}
	return img, s.b.cache().put(key, img.ID)
}

// dispatch runs one instruction.
func (s *stageRun) dispatch(ctx context.Context, cmd instructions.Command, out *stepOut) error {
	if err := s.expand(cmd); err != nil {
		return err
	}
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		words := make([]string, 0, len(c.Env))
		for _, kv := range c.Env {
			s.cfg.Config.Env = setEnv(s.cfg.Config.Env, kv.Key, kv.Value)
			words = append(words, kv.Key+"="+kv.Value)
		}
		s.meta("ENV " + strings.Join(words, " "))
	case *instructions.LabelCommand:
		if s.cfg.Config.Labels == nil {
			s.cfg.Config.Labels = map[string]string{}
		}
		words := make([]string, 0, len(c.Labels))
		for _, kv := range c.Labels {
			s.cfg.Config.Labels[kv.Key] = kv.Value
			words = append(words, kv.Key+"="+kv.Value)
		}
		s.meta("LABEL " + strings.Join(words, " "))
	case *instructions.MaintainerCommand:
		s.cfg.Author = c.Maintainer
		s.meta("MAINTAINER " + c.Maintainer)
	case *instructions.ArgCommand:
		s.arg(c)
	case *instructions.UserCommand:
		s.cfg.Config.User = c.User
		s.meta("USER " + c.User)
	case *instructions.ExposeCommand:
		return s.expose(c)
	case *instructions.VolumeCommand:
		if s.cfg.Config.Volumes == nil {
			s.cfg.Config.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if strings.TrimSpace(v) == "" {
				return errdefs.InvalidArgumentf("VOLUME specified can not be an empty string")
			}
			s.cfg.Config.Volumes[v] = struct{}{}
		}
		s.meta(fmt.Sprintf("VOLUME %v", c.Volumes))
	case *instructions.StopSignalCommand:
		s.cfg.Config.StopSignal = c.Signal
		s.meta("STOPSIGNAL " + c.Signal)
	case *instructions.ShellCommand:
		s.cfg.Config.Shell = append([]string(nil), c.Shell...)
		s.meta(fmt.Sprintf("SHELL %v", c.Shell))
	case *instructions.CmdCommand:
		s.cfg.Config.Cmd = s.withShell(c.ShellDependantCmdLine)
		s.cmdSet = true
		s.meta(fmt.Sprintf("CMD %q", s.cfg.Config.Cmd))
	case *instructions.EntrypointCommand:
		s.cfg.Config.Entrypoint = s.withShell(c.ShellDependantCmdLine)
		if !s.cmdSet {
			// The base's CMD was meant for the base's ENTRYPOINT.
			s.cfg.Config.Cmd = nil
		}
		s.meta(fmt.Sprintf("ENTRYPOINT %q", s.cfg.Config.Entrypoint))
	case *instructions.HealthCheckCommand:
		h := *c.Health
		h.Test = append([]string(nil), c.Health.Test...)
		s.cfg.Config.Healthcheck = &h
		s.meta(fmt.Sprintf("HEALTHCHECK &{%q %q %q %q %q %d}", h.Test, h.Interval.String(), h.Timeout.String(),
			h.StartPeriod.String(), h.StartInterval.String(), h.Retries))
	case *instructions.OnbuildCommand:
		s.cfg.Config.OnBuild = append(s.cfg.Config.OnBuild, c.Expression)
		s.meta("ONBUILD " + c.Expression)
	case *instructions.WorkdirCommand:
		return s.workdir(ctx, c, out)
	case *instructions.RunCommand:
		return s.run(ctx, c, out)
	case *instructions.CopyCommand:
		return s.copy(ctx, copyRequest{
			name: "COPY", sd: c.SourcesAndDest, from: c.From, chown: c.Chown, chmod: c.Chmod,
			parents: c.Parents, excludes: c.ExcludePatterns,
		}, out)
	case *instructions.AddCommand:
		unpack := true
		if c.Unpack != nil {
			unpack = *c.Unpack
		}
		return s.copy(ctx, copyRequest{
			name: "ADD", sd: c.SourcesAndDest, chown: c.Chown, chmod: c.Chmod, add: true,
			unpack: unpack, checksum: c.Checksum, excludes: c.ExcludePatterns,
		}, out)
	default:
		return errdefs.NotImplementedf("%s is not supported", strings.ToUpper(cmd.Name()))
	}
	return nil
}

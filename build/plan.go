package build

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// plan is a parsed Dockerfile with the stages a build needs.
type plan struct {
	escape   rune
	stages   []*stagePlan // all stages, in Dockerfile order
	target   *stagePlan
	total    int               // steps to run, for "Step n/total"
	metaEnv  []string          // ARGs before the first FROM, as KEY=value
	metaArgs map[string]string // the same, as a map
	args     *argUse
	warnings []string
}

// stagePlan is one FROM and its instructions.
type stagePlan struct {
	index     int
	name      string
	st        instructions.Stage
	base      string     // FROM's image reference, expanded; "" when baseStage is set
	baseStage *stagePlan // FROM names an earlier stage
	deps      map[*stagePlan]bool
	firstStep int // step number of the FROM
	needed    bool
}

// argUse tracks which build args were consumed, across stages built at
// the same time.
type argUse struct {
	mu       sync.Mutex
	given    map[string]*string
	consumed map[string]bool
}

func (a *argUse) consume(name string) {
	a.mu.Lock()
	a.consumed[name] = true
	a.mu.Unlock()
}

// value is the build arg name's value when the build gave one.
func (a *argUse) value(name string) (string, bool) {
	v, ok := a.given[name]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

// unused lists given args no ARG declared (proxy args excepted), sorted.
func (a *argUse) unused() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for k := range a.given {
		if !a.consumed[k] && !isPredefinedArg(k) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// nativePlatform is the only platform lodge builds for.
func nativePlatform() string { return "linux/" + runtime.GOARCH }

// platformArgs are the automatic platform ARGs, all native.
func platformArgs() map[string]string {
	p := nativePlatform()
	return map[string]string{
		"BUILDPLATFORM": p, "BUILDOS": "linux", "BUILDARCH": runtime.GOARCH, "BUILDVARIANT": "",
		"TARGETPLATFORM": p, "TARGETOS": "linux", "TARGETARCH": runtime.GOARCH, "TARGETVARIANT": "",
	}
}

// checkPlatform refuses any platform but the native one.
func checkPlatform(p string) error {
	if p == "" {
		return nil
	}
	parts := strings.Split(strings.ToLower(p), "/")
	arch := runtime.GOARCH
	alias := map[string]string{"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}
	ok := parts[0] == "linux"
	if len(parts) > 1 {
		a := parts[1]
		if v, found := alias[a]; found {
			a = v
		}
		ok = ok && a == arch
	}
	if ok && len(parts) <= 3 {
		return nil
	}
	return errdefs.InvalidArgumentf("platform %q is not supported: lodge builds only for the native platform %s", p, nativePlatform())
}

// parseError turns a parser error into one that names the line.
func parseError(err error) error {
	msg := err.Error()
	var le *parser.LocationError
	if !strings.Contains(msg, "line ") && errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		msg = fmt.Sprintf("dockerfile parse error on line %d: %s", le.Locations[0][0].Start.Line, msg)
	}
	return errdefs.InvalidArgumentf("%s", msg)
}

// newPlan parses dockerfile and picks the stages target needs.
func newPlan(dockerfile []byte, opts Options) (*plan, error) {
	res, err := parser.Parse(bytes.NewReader(dockerfile))
	if err != nil {
		return nil, parseError(err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, parseError(err)
	}
	if len(stages) == 0 {
		return nil, errdefs.InvalidArgumentf("dockerfile has no FROM instruction")
	}
	p := &plan{
		escape:   res.EscapeToken,
		metaArgs: map[string]string{},
		args:     &argUse{given: opts.BuildArgs, consumed: map[string]bool{}},
	}
	for _, w := range res.Warnings {
		p.warnings = append(p.warnings, "[WARNING]: "+w.Short)
	}

	// ARGs before FROM: visible to FROM lines, and to stages that
	// declare them again.
	lex := shell.NewLex(p.escape)
	for k, v := range platformArgs() {
		p.metaArgs[k] = v
	}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			p.args.consume(kv.Key)
			if v, ok := p.args.value(kv.Key); ok {
				p.metaArgs[kv.Key] = v
				continue
			}
			if kv.Value != nil {
				v, _, err := lex.ProcessWord(*kv.Value, shell.EnvsFromSlice(p.env()))
				if err != nil {
					return nil, errdefs.InvalidArgumentf("ARG %s: %v", kv.Key, err)
				}
				p.metaArgs[kv.Key] = v
			}
		}
	}
	p.metaEnv = p.env()
	env := shell.EnvsFromSlice(p.metaEnv)

	for i := range stages {
		sp := &stagePlan{index: i, name: stages[i].Name, st: stages[i], deps: map[*stagePlan]bool{}}
		base, _, err := lex.ProcessWord(stages[i].BaseName, env)
		if err != nil {
			return nil, errdefs.InvalidArgumentf("FROM %s: %v", stages[i].BaseName, err)
		}
		if base == "" {
			return nil, errdefs.InvalidArgumentf("base name (%s) should not be blank", stages[i].BaseName)
		}
		if s := p.stageByName(base, i); s != nil {
			sp.baseStage = s
			sp.deps[s] = true
		} else {
			sp.base = base
		}
		if stages[i].Platform != "" {
			plat, _, err := lex.ProcessWord(stages[i].Platform, env)
			if err != nil {
				return nil, errdefs.InvalidArgumentf("FROM --platform: %v", err)
			}
			if err := checkPlatform(plat); err != nil {
				return nil, err
			}
		}
		for _, cmd := range stages[i].Commands {
			for _, from := range commandFroms(cmd) {
				ref, _, err := lex.ProcessWord(from, env)
				if err != nil {
					return nil, errdefs.InvalidArgumentf("--from=%s: %v", from, err)
				}
				if s, err := p.stageRef(ref, i); err != nil {
					return nil, err
				} else if s != nil {
					sp.deps[s] = true
				}
			}
		}
		p.stages = append(p.stages, sp)
	}

	p.target = p.stages[len(p.stages)-1]
	if opts.Target != "" {
		p.target = p.stageByName(opts.Target, len(p.stages))
		if p.target == nil {
			return nil, errdefs.NotFoundf("failed to reach build target %s in Dockerfile", opts.Target)
		}
	}
	var mark func(s *stagePlan)
	mark = func(s *stagePlan) {
		if s.needed {
			return
		}
		s.needed = true
		for d := range s.deps {
			mark(d)
		}
	}
	mark(p.target)
	n := 1
	for _, s := range p.stages {
		if !s.needed {
			continue
		}
		s.firstStep = n
		n += 1 + len(s.st.Commands)
	}
	p.total = n - 1
	return p, nil
}

func (p *plan) env() []string {
	env := make([]string, 0, len(p.metaArgs))
	for k, v := range p.metaArgs {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// stageByName finds a stage named name among the first n stages.
func (p *plan) stageByName(name string, n int) *stagePlan {
	for _, s := range p.stages[:min(n, len(p.stages))] {
		if s.name != "" && strings.EqualFold(s.name, name) {
			return s
		}
	}
	return nil
}

// stageRef resolves a --from value seen in stage n: an earlier stage by
// name or index, or nil for an image reference.
func (p *plan) stageRef(ref string, n int) (*stagePlan, error) {
	if s := p.stageByName(ref, n); s != nil {
		return s, nil
	}
	if i, err := strconv.Atoi(ref); err == nil {
		if i < 0 || i >= n {
			return nil, errdefs.InvalidArgumentf("invalid from flag value %s: refers to current or future build stage", ref)
		}
		return p.stages[i], nil
	}
	return nil, nil
}

// commandFroms lists the --from values cmd refers to.
func commandFroms(cmd instructions.Command) []string {
	switch c := cmd.(type) {
	case *instructions.CopyCommand:
		if c.From != "" {
			return []string{c.From}
		}
	case *instructions.RunCommand:
		var out []string
		for _, m := range instructions.GetMounts(c) {
			if m.From != "" {
				out = append(out, m.From)
			}
		}
		return out
	}
	return nil
}

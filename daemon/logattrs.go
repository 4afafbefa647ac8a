package daemon

import (
	"io"
	"os"
	"regexp"
	"strings"
	"text/template"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/errdefs"
)

// Docker's json-file driver writes attributes beside each line of a
// container's log, which docker logs --details puts before the line: the
// labels and environment variables the labels, labels-regex, env and
// env-regex log options name, and the tag option's text. They come from
// the container's configuration, which does not change once it is
// created, so lodge works them out when the log is read (logAttrs)
// rather than writing them into every line.

// checkLogAttrOpts refuses a json-file log configuration whose regexps or
// tag template would not work, at create rather than at each read.
func checkLogAttrOpts(lc container.LogConfig) error {
	for _, k := range []string{"labels-regex", "env-regex"} {
		if re, ok := lc.Config[k]; ok && re != "" {
			if _, err := regexp.Compile(re); err != nil {
				return errdefs.InvalidArgumentf("log option %s: %v", k, err)
			}
		}
	}
	if tag := lc.Config["tag"]; tag != "" {
		t, err := template.New("log-tag").Parse(tag)
		if err != nil {
			return errdefs.InvalidArgumentf("log option tag: %v", err)
		}
		// A field or function the tag's info lacks fails only when the
		// template runs (Docker fails the start then); every field is
		// there for any container, so a placeholder one finds it now.
		zeros := strings.Repeat("0", 64)
		probe := &Container{ID: zeros, Name: "name", Path: "true", ImageID: "sha256:" + zeros, Config: &container.Config{Image: "image"}}
		if err := t.Execute(io.Discard, tagInfo{probe}); err != nil {
			return errdefs.InvalidArgumentf("log option tag: %v", err)
		}
	}
	return nil
}

// logAttrs are c's log attributes, nil when it has none (every driver but
// json-file). Callers hold c.mu.
func logAttrs(c *Container) map[string]string {
	lc := c.HostConfig.LogConfig
	if lc.Type != logDriver || len(lc.Config) == 0 {
		return nil
	}
	attrs := map[string]string{}
	pickAttrs(attrs, c.Config.Labels, lc.Config["labels"], lc.Config["labels-regex"])
	env := map[string]string{}
	for _, kv := range c.Config.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	pickAttrs(attrs, env, lc.Config["env"], lc.Config["env-regex"])
	if tag := logTag(c, lc.Config["tag"]); tag != "" {
		attrs["tag"] = tag
	}
	if len(attrs) == 0 {
		return nil
	}
	return attrs
}

// pickAttrs copies into attrs the entries of m that the comma-separated
// names list or the regexp re names.
func pickAttrs(attrs, m map[string]string, names, re string) {
	if names != "" {
		for _, k := range strings.Split(names, ",") {
			if v, ok := m[k]; ok {
				attrs[k] = v
			}
		}
	}
	if re == "" {
		return
	}
	if r, err := regexp.Compile(re); err == nil {
		for k, v := range m {
			if r.MatchString(k) {
				attrs[k] = v
			}
		}
	}
}

// logTag is the tag option's template run on what Docker's log tags
// offer ({{.ID}}, {{.Name}}, {{.ImageName}}, ...); "" when there is none
// or it fails.
func logTag(c *Container, tmpl string) string {
	if tmpl == "" {
		return ""
	}
	t, err := template.New("log-tag").Parse(tmpl)
	if err != nil {
		return ""
	}
	var b strings.Builder
	if err := t.Execute(&b, tagInfo{c}); err != nil {
		return ""
	}
	return b.String()
}

// tagInfo is a container as a log tag's template sees it.
type tagInfo struct{ c *Container }

func (t tagInfo) ID() string          { return t.c.ID[:min(12, len(t.c.ID))] }
func (t tagInfo) FullID() string      { return t.c.ID }
func (t tagInfo) Name() string        { return t.c.Name }
func (t tagInfo) ImageName() string   { return t.c.Config.Image }
func (t tagInfo) ImageFullID() string { return t.c.ImageID }
func (t tagInfo) ImageID() string {
	id := t.c.ImageID
	if _, hex, ok := strings.Cut(id, ":"); ok {
		id = hex
	}
	return id[:min(12, len(id))]
}
func (t tagInfo) Command() string { return strings.Join(append([]string{t.c.Path}, t.c.Args...), " ") }

// DaemonName is the name Docker's tags give the engine; clients' tag
// templates are written for it.
func (t tagInfo) DaemonName() string { return "docker" }

// Hostname is the host's name, as in Docker (not the container's).
func (t tagInfo) Hostname() (string, error) { return os.Hostname() }

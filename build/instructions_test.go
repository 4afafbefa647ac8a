package build

import (
	"reflect"
	"strings"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// TestInstructionEffects checks each metadata instruction's effect on the
// config and its history line.
func TestInstructionEffects(t *testing.T) {
	tests := []struct {
		name    string
		lines   string
		opts    Options
		check   func(t *testing.T, c dockerspec.DockerOCIImage)
		history []string // the new entries' CreatedBy, after the base's
	}{
		{
			name:    "ENV",
			lines:   "ENV A=b C=\"d e\"\nENV F=$A-x",
			check:   envIs("PATH=/usr/bin:/bin", "A=b", "C=d e", "F=b-x"),
			history: []string{"/bin/sh -c #(nop)  ENV A=b C=d e", "/bin/sh -c #(nop)  ENV F=b-x"},
		},
		{
			name:  "ENV replaces",
			lines: "ENV PATH=/x:$PATH",
			check: envIs("PATH=/x:/usr/bin:/bin"),
		},
		{
			name:  "LABEL and options labels",
			lines: "LABEL a=b \"c d\"=e",
			opts:  Options{Labels: map[string]string{"z": "1"}},
			check: func(t *testing.T, c dockerspec.DockerOCIImage) {
				want := map[string]string{"a": "b", "c d": "e", "z": "1"}
				if !reflect.DeepEqual(c.Config.Labels, want) {
					t.Errorf("labels %v", c.Config.Labels)
				}
			},
			history: []string{"/bin/sh -c #(nop)  LABEL a=b c d=e", "/bin/sh -c #(nop)  LABEL z=1"},
		},
		{
			name:    "USER",
			lines:   "ARG U=app\nUSER $U",
			check:   func(t *testing.T, c dockerspec.DockerOCIImage) { eq(t, c.Config.User, "app") },
			history: []string{"/bin/sh -c #(nop)  ARG U=app", "/bin/sh -c #(nop)  USER app"},
		},
		{
			name:  "EXPOSE",
			lines: "EXPOSE 80 53/udp 8000-8001",
			check: func(t *testing.T, c dockerspec.DockerOCIImage) {
				if len(c.Config.ExposedPorts) != 4 {
					t.Errorf("ports %v", c.Config.ExposedPorts)
				}
				if _, ok := c.Config.ExposedPorts["53/udp"]; !ok {
					t.Errorf("ports %v", c.Config.ExposedPorts)
				}
			},
			history: []string{"/bin/sh -c #(nop)  EXPOSE 53/udp 80/tcp 8000/tcp 8001/tcp"},
		},
		{
			name:  "VOLUME",
			lines: `VOLUME ["/data", "/logs"]`,
			check: func(t *testing.T, c dockerspec.DockerOCIImage) {
				if len(c.Config.Volumes) != 2 {
					t.Errorf("volumes %v", c.Config.Volumes)
				}
			},
			history: []string{"/bin/sh -c #(nop)  VOLUME [/data /logs]"},
		},
		{
			name:    "STOPSIGNAL",
			lines:   "STOPSIGNAL SIGKILL",
			check:   func(t *testing.T, c dockerspec.DockerOCIImage) { eq(t, c.Config.StopSignal, "SIGKILL") },
			history: []string{"/bin/sh -c #(nop)  STOPSIGNAL SIGKILL"},
		},
		{
			name:  "SHELL changes CMD and history from its own line on, as Docker",
			lines: `SHELL ["/bin/bash", "-c"]` + "\nCMD echo hi",
			check: func(t *testing.T, c dockerspec.DockerOCIImage) {
				eqs(t, c.Config.Shell, "/bin/bash", "-c")
				eqs(t, c.Config.Cmd, "/bin/bash", "-c", "echo hi")
			},
			history: []string{"/bin/bash -c #(nop)  SHELL [/bin/bash -c]", `/bin/bash -c #(nop)  CMD ["/bin/bash" "-c" "echo hi"]`},
		},
		{
			name:  "ENTRYPOINT resets the base's CMD",
			lines: `ENTRYPOINT ["/app"]`,
			check: func(t *testing.T, c dockerspec.DockerOCIImage) {
				eqs(t, c.Config.Entrypoint, "/app")
				if c.Config.Cmd != nil {
					t.Errorf("Cmd %q kept", c.Config.Cmd)
				}
			},
			history: []string{`/bin/sh -c #(nop)  ENTRYPOINT ["/app"]`},
		},
		{
			name:  "ENTRYPOINT keeps this stage's CMD",
			lines: "CMD [\"x\"]\nENTRYPOINT [\"/app\"]",
			check: func(t *testing.T, c dockerspec.DockerOCIImage) { eqs(t, c.Config.Cmd, "x") },
		},
		{
			name:  "HEALTHCHECK",
			lines: "HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/",
			check: func(t *testing.T, c dockerspec.DockerOCIImage) {
				hc := c.Config.Healthcheck
				if hc == nil || hc.Interval != 5*time.Second || hc.Retries != 3 {
					t.Fatalf("healthcheck %+v", hc)
				}
				eqs(t, hc.Test, "CMD-SHELL", "curl -f http://localhost/")
			},
		},
		{
			name:  "HEALTHCHECK NONE",
			lines: "HEALTHCHECK NONE",
			check: func(t *testing.T, c dockerspec.DockerOCIImage) { eqs(t, c.Config.Healthcheck.Test, "NONE") },
		},
		{
			name:    "ONBUILD is stored",
			lines:   "ONBUILD RUN echo child",
			check:   func(t *testing.T, c dockerspec.DockerOCIImage) { eqs(t, c.Config.OnBuild, "RUN echo child") },
			history: []string{"/bin/sh -c #(nop)  ONBUILD RUN echo child"},
		},
		{
			name:    "MAINTAINER",
			lines:   "MAINTAINER someone",
			check:   func(t *testing.T, c dockerspec.DockerOCIImage) { eq(t, c.Author, "someone") },
			history: []string{"/bin/sh -c #(nop)  MAINTAINER someone"},
		},
		{
			name:  "WORKDIR relative to the previous, made when missing",
			lines: "WORKDIR /a\nWORKDIR b\nWORKDIR /etc",
			check: func(t *testing.T, c dockerspec.DockerOCIImage) { eq(t, c.Config.WorkingDir, "/etc") },
			history: []string{"/bin/sh -c #(nop) WORKDIR /a", "/bin/sh -c #(nop) WORKDIR /a/b",
				"/bin/sh -c #(nop) WORKDIR /etc"},
		},
		{
			name:  "ARG from the build, defaults, meta",
			lines: "ARG A\nARG B=def\nARG C\nENV X=$A-$B-$C",
			opts:  Options{BuildArgs: map[string]*string{"A": strp("given")}},
			check: envIs("PATH=/usr/bin:/bin", "X=given-def-"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			id, out := h.mustBuild("FROM busybox\n"+tt.lines+"\n", tt.opts)
			img := h.fb.image(id)
			if tt.check != nil {
				tt.check(t, img.Config)
			}
			if tt.history != nil {
				var got []string
				for _, hst := range img.Config.History[1:] {
					got = append(got, hst.CreatedBy)
				}
				if !reflect.DeepEqual(got, tt.history) {
					t.Errorf("history\n got %q\nwant %q\n%s", got, tt.history, out)
				}
			}
		})
	}
}

func TestWorkdirMakesMissingDirOnly(t *testing.T) {
	h := newHarness(t)
	id, _ := h.mustBuild("FROM busybox\nWORKDIR /etc\nWORKDIR /srv/app\n", Options{})
	layer := h.fb.lastLayer(id)
	if len(layer) != 2 || layer[0].Name != "srv/" || layer[1].Name != "srv/app/" {
		t.Errorf("layer %+v", layer)
	}
	hist := h.fb.image(id).Config.History
	if !hist[1].EmptyLayer || hist[2].EmptyLayer {
		t.Errorf("EmptyLayer: WORKDIR /etc exists, /srv/app does not: %+v", hist)
	}
}

func TestOnbuildTriggersRunAfterFrom(t *testing.T) {
	h := newHarness(t)
	parent, _ := h.mustBuild("FROM busybox\nONBUILD ENV FROM_PARENT=1\nONBUILD RUN echo trigger\n", Options{})
	h.fb.bases["parent"] = h.fb.image(parent)
	id, out := h.mustBuild("FROM parent\nENV MINE=1\n", Options{})
	img := h.fb.image(id)
	if img.Config.Config.OnBuild != nil {
		t.Errorf("triggers kept: %q", img.Config.Config.OnBuild)
	}
	envIs("PATH=/usr/bin:/bin", "FROM_PARENT=1", "MINE=1")(t, img.Config)
	if !strings.Contains(out, "# Executing 2 build triggers") || h.fb.callCount("Run /bin/sh -c echo trigger") != 1 {
		t.Errorf("triggers not run:\n%s\n%v", out, h.fb.calls)
	}
}

func TestRunHistoryWithBuildArgs(t *testing.T) {
	h := newHarness(t)
	id, _ := h.mustBuild("FROM busybox\nARG B=2\nARG A\nRUN echo $A\n", Options{BuildArgs: map[string]*string{
		"A": strp("1"), "HTTP_PROXY": strp("http://127.0.0.1:3128"),
	}})
	hist := h.fb.image(id).Config.History
	eq(t, hist[len(hist)-1].CreatedBy, "|2 A=1 B=2 /bin/sh -c echo $A")
	env := h.fb.runs[0].Env
	for _, want := range []string{"A=1", "B=2", "HTTP_PROXY=http://127.0.0.1:3128"} {
		if !contains(env, want) {
			t.Errorf("env %q lacks %s", env, want)
		}
	}
}

func TestUnusedBuildArgWarning(t *testing.T) {
	h := newHarness(t)
	_, out := h.mustBuild("FROM busybox\nARG USED\n", Options{BuildArgs: map[string]*string{
		"USED": strp("1"), "X": strp("2"), "http_proxy": strp("p"),
	}})
	if !strings.Contains(out, "[Warning] One or more build-args [X] were not consumed\n") {
		t.Errorf("no warning:\n%s", out)
	}
}

func TestRunForms(t *testing.T) {
	tests := []struct {
		name, dockerfile string
		cmd              []string
		network          string
		opts             Options
	}{
		{"exec form", `RUN ["echo", "hi"]`, []string{"echo", "hi"}, "default", Options{}},
		{"network flag", "RUN --network=none true", []string{"/bin/sh", "-c", "true"}, "none", Options{}},
		{"build network", "RUN true", []string{"/bin/sh", "-c", "true"}, "host", Options{Network: "host"}},
		{"heredoc", "RUN <<EOF\necho one\necho two\nEOF", []string{"/bin/sh", "-c", "echo one\necho two\n"}, "default", Options{}},
		{"heredoc shebang", "RUN <<EOF\n#!/bin/ash\necho one\nEOF", []string{"/bin/sh", "-c", "/dev/pipes/EOF"}, "default", Options{}},
		{"heredoc to a command", "RUN cat <<EOF > /x\nhello\nEOF", []string{"/bin/sh", "-c", "cat <<EOF > /x\nhello\nEOF"}, "default", Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.mustBuild("FROM busybox\n"+tt.dockerfile+"\n", tt.opts)
			req := h.fb.runs[0]
			if !reflect.DeepEqual(req.Cmd, tt.cmd) {
				t.Errorf("cmd %q, want %q", req.Cmd, tt.cmd)
			}
			eq(t, req.Network, tt.network)
		})
	}
}

func TestRunMounts(t *testing.T) {
	h := newHarness(t)
	h.mustBuild(`FROM busybox AS src
RUN true
FROM busybox
RUN --mount=type=cache,target=/root/.cache,mode=0700 \
    --mount=type=bind,source=sub,target=/ctx \
    --mount=type=bind,from=src,target=/src,rw \
    --mount=type=tmpfs,target=/tmp \
    true
`, Options{}, tf{name: "sub/f", body: "x"})
	req := h.fb.runs[len(h.fb.runs)-1]
	if len(req.Mounts) != 4 {
		t.Fatalf("mounts %+v", req.Mounts)
	}
	cache, bind, stage, tmpfs := req.Mounts[0], req.Mounts[1], req.Mounts[2], req.Mounts[3]
	if cache.Type != "bind" || !strings.HasPrefix(cache.Source, h.b.dir+"/cache/") || cache.ReadOnly || cache.Target != "/root/.cache" {
		t.Errorf("cache mount %+v", cache)
	}
	if !bind.ReadOnly || bind.Target != "/ctx" {
		t.Errorf("bind mount %+v", bind)
	}
	if stage.ReadOnly || stage.Target != "/src" {
		t.Errorf("stage mount %+v", stage)
	}
	if tmpfs.Type != "tmpfs" || tmpfs.Target != "/tmp" {
		t.Errorf("tmpfs mount %+v", tmpfs)
	}
}

func strp(s string) *string { return &s }

func eq(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func eqs(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func envIs(want ...string) func(t *testing.T, c dockerspec.DockerOCIImage) {
	return func(t *testing.T, c dockerspec.DockerOCIImage) {
		t.Helper()
		eqs(t, c.Config.Env, want...)
	}
}

func TestArgScopes(t *testing.T) {
	h := newHarness(t)
	id, out := h.mustBuild(`ARG V=meta
ARG ONLYMETA=m
FROM busybox AS first
ARG V
ARG S=stage
ENV X=$V-$ONLYMETA-$S
FROM first
ENV Y=$V-$S
`, Options{})
	envIs("PATH=/usr/bin:/bin", "X=meta--stage", "Y=-")(t, h.fb.image(id).Config)
	if strings.Contains(out, "[Warning]") {
		t.Errorf("warning with no build args:\n%s", out)
	}
}

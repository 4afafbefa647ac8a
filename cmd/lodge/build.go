package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

type buildFlags struct {
	tags, buildArgs, labels, addHosts []string
	file, target, iidfile, network    string
	noCache, pull, quiet              bool
}

func buildCmd(a *app) *cobra.Command {
	var f buildFlags
	cmd := &cobra.Command{
		Use: "build [OPTIONS] PATH | -", Short: "Build an image from a Dockerfile", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			o, err := f.options()
			if err != nil {
				return err
			}
			body, err := buildBody(args[0], f.file, &o)
			if err != nil {
				return err
			}
			defer body.Close()
			res, err := c.ImageBuild(cmd.Context(), body, o)
			if err != nil {
				return a.explain(err)
			}
			defer res.Body.Close()
			id := ""
			fd := os.Stdout.Fd()
			err = jsonmessage.DisplayJSONMessagesStream(res.Body, os.Stdout, fd, term.IsTerminal(int(fd)), func(m jsonstream.Message) {
				var aux struct{ ID string }
				if m.Aux != nil && json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
					id = aux.ID
				}
			})
			if err != nil {
				return err
			}
			if f.iidfile != "" {
				if id == "" {
					return fmt.Errorf("the daemon sent no image ID for --iidfile")
				}
				return os.WriteFile(f.iidfile, []byte(id), 0o644)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.tags, "tag", "t", nil, "name and optionally a tag (name:tag)")
	fl.StringVarP(&f.file, "file", "f", "", "the Dockerfile (default PATH/Dockerfile)")
	fl.StringArrayVar(&f.buildArgs, "build-arg", nil, "build-time variable (KEY=VALUE, or KEY to take it from the environment)")
	fl.StringVar(&f.target, "target", "", "the build stage to build")
	fl.StringArrayVar(&f.labels, "label", nil, "label for the image (key=value)")
	fl.BoolVar(&f.noCache, "no-cache", false, "do not use the cache")
	fl.BoolVar(&f.pull, "pull", false, "always pull the base images")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only the image ID")
	fl.StringVar(&f.iidfile, "iidfile", "", "write the image ID to this file")
	fl.StringVar(&f.network, "network", "", "network for RUN steps: default, none or host")
	fl.StringArrayVar(&f.addHosts, "add-host", nil, "host:ip for RUN steps' /etc/hosts")
	return cmd
}

// options turns the flags into the API's build options.
func (f *buildFlags) options() (client.ImageBuildOptions, error) {
	o := client.ImageBuildOptions{
		Tags: f.tags, Target: f.target, NoCache: f.noCache, PullParent: f.pull, SuppressOutput: f.quiet,
		NetworkMode: f.network, Remove: true, BuildArgs: map[string]*string{}, Labels: map[string]string{},
	}
	for _, kv := range f.buildArgs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			// As docker: KEY alone takes the caller's environment, and
			// stays unset without it.
			if ev, found := os.LookupEnv(k); found {
				o.BuildArgs[k] = &ev
			} else {
				o.BuildArgs[k] = nil
			}
			continue
		}
		o.BuildArgs[k] = &v
	}
	for _, kv := range f.labels {
		k, v, _ := strings.Cut(kv, "=")
		o.Labels[k] = v
	}
	for _, h := range f.addHosts {
		// docker's --add-host takes host:ip and host=ip.
		if k, v, ok := strings.Cut(h, "="); ok {
			h = k + ":" + v
		}
		o.ExtraHosts = append(o.ExtraHosts, h)
	}
	return o, nil
}

// buildBody is the request body: stdin as it comes (a tar or a bare
// Dockerfile) for "-", else the directory's tar, written as it is sent.
func buildBody(path, file string, o *client.ImageBuildOptions) (io.ReadCloser, error) {
	if path == "-" {
		if file != "" {
			return nil, fmt.Errorf("-f cannot be used with a context from stdin: name the Dockerfile inside the tar")
		}
		return io.NopCloser(os.Stdin), nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("unable to prepare the context: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("unable to prepare the context: %s is not a directory", path)
	}
	copts := contextOptions{keep: []string{".dockerignore"}}
	switch {
	case file == "":
		copts.keep = append(copts.keep, "Dockerfile")
	case file == "-":
		return nil, fmt.Errorf("-f - is not supported by lodge build: put the Dockerfile in the context")
	default:
		abs, err := filepath.Abs(file)
		if err != nil {
			return nil, err
		}
		ctxAbs, _ := filepath.Abs(path)
		if rel, err := filepath.Rel(ctxAbs, abs); err == nil && !strings.HasPrefix(rel, "..") {
			copts.keep = append(copts.keep, rel)
			o.Dockerfile = filepath.ToSlash(rel)
		} else {
			// Outside the context: sent beside it under a name of its own.
			name := ".lodge-dockerfile-" + filepath.Base(abs)
			copts.extra = map[string]string{name: abs}
			o.Dockerfile = name
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeContext(pw, path, copts)) }()
	return pr, nil
}

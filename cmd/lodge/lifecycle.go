package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"text/template"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func restartCmd(a *app) *cobra.Command {
	return stoppingCmd(a, "restart CONTAINER...", "Restart containers", func(ctx context.Context, c *client.Client, id string, timeout *int, sig string) error {
		_, err := c.ContainerRestart(ctx, id, client.ContainerRestartOptions{Signal: sig, Timeout: timeout})
		return err
	})
}

func killCmd(a *app) *cobra.Command {
	var sig string
	cmd := eachCmd(a, "kill CONTAINER...", "Send a signal to containers (default KILL)", func(ctx context.Context, c *client.Client, id string) error {
		_, err := c.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: sig})
		return err
	})
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "signal to send, by name or number")
	return cmd
}

// waitCmd prints each container's exit code once it has stopped, as
// docker wait does, and fails if any could not be waited for.
func waitCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use: "wait CONTAINER...", Short: "Wait for containers to stop and print their exit codes", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var failed []string
			for _, id := range args {
				res := c.ContainerWait(cmd.Context(), id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
				select {
				case r := <-res.Result:
					fmt.Fprintln(a.out, r.StatusCode)
				case err := <-res.Error:
					fmt.Fprintln(os.Stderr, "lodge:", a.explain(err))
					failed = append(failed, id)
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("failed: %s", strings.Join(failed, " "))
			}
			return nil
		},
	}
}

func renameCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use: "rename CONTAINER NEW_NAME", Short: "Rename a container", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			_, err = c.ContainerRename(cmd.Context(), args[0], client.ContainerRenameOptions{NewName: args[1]})
			return a.explain(err)
		},
	}
}

func topCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use: "top CONTAINER [ps OPTIONS]", Short: "Show a container's processes", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.ContainerTop(cmd.Context(), args[0], client.ContainerTopOptions{Arguments: args[1:]})
			if err != nil {
				return a.explain(err)
			}
			tw := tabwriter.NewWriter(a.out, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, strings.Join(res.Titles, "\t"))
			for _, p := range res.Processes {
				fmt.Fprintln(tw, strings.Join(p, "\t"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// inspectCmd prints containers or images as a JSON array, or each through
// --format, as docker inspect does. Names are looked up as containers
// first, then as images.
func inspectCmd(a *app) *cobra.Command {
	var format, kind string
	cmd := &cobra.Command{
		Use: "inspect [OPTIONS] NAME...", Short: "Show containers' or images' details", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return a.inspect(cmd.Context(), c, args, format, func(ctx context.Context, name string) (json.RawMessage, error) {
				if kind != "image" {
					res, err := c.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
					if err == nil || kind == "container" {
						return res.Raw, err
					}
				}
				return rawImage(ctx, c, name)
			})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Go template for each object")
	cmd.Flags().StringVar(&kind, "type", "", "container or image")
	return cmd
}

func rawImage(ctx context.Context, c *client.Client, name string) (json.RawMessage, error) {
	var buf bytes.Buffer
	if _, err := c.ImageInspect(ctx, name, client.ImageInspectWithRawResponse(&buf)); err != nil {
		return nil, err
	}
	return json.RawMessage(buf.Bytes()), nil
}

// inspect looks each name up with get and prints the results: a JSON
// array, or each through a template. Names not found are reported on
// stderr and make the command fail, after the others are printed.
func (a *app) inspect(ctx context.Context, c *client.Client, names []string, format string, get func(context.Context, string) (json.RawMessage, error)) error {
	var tmpl *template.Template
	if format != "" {
		var err error
		if tmpl, err = template.New("format").Funcs(template.FuncMap{"json": toJSON}).Parse(format); err != nil {
			return fmt.Errorf("invalid --format: %w", err)
		}
	}
	var out []json.RawMessage
	var failed []string
	for _, n := range names {
		raw, err := get(ctx, n)
		if err != nil {
			fmt.Fprintln(os.Stderr, "lodge:", a.explain(err))
			failed = append(failed, n)
			continue
		}
		if tmpl == nil {
			out = append(out, raw)
			continue
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		if err := tmpl.Execute(a.out, v); err != nil {
			return err
		}
		fmt.Fprintln(a.out)
	}
	if tmpl == nil {
		if out == nil {
			out = []json.RawMessage{}
		}
		b, err := json.MarshalIndent(out, "", "    ")
		if err != nil {
			return err
		}
		fmt.Fprintln(a.out, string(b))
	}
	if len(failed) > 0 {
		return fmt.Errorf("no such object: %s", strings.Join(failed, " "))
	}
	return nil
}

func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// attachCmd connects the terminal to a running container's stdio until it
// ends or the user detaches (the detach keys, ctrl-p ctrl-q by default).
func attachCmd(a *app) *cobra.Command {
	var noStdin bool
	var detachKeys string
	cmd := &cobra.Command{
		Use: "attach CONTAINER", Short: "Attach to a running container's input and output", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			insp, err := c.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
			if err != nil {
				return a.explain(err)
			}
			ct := insp.Container
			if ct.State == nil || !ct.State.Running {
				return errors.New("you cannot attach to a stopped container, start it first")
			}
			tty := ct.Config != nil && ct.Config.Tty
			stdin := !noStdin && ct.Config != nil && ct.Config.OpenStdin
			att, err := c.ContainerAttach(ctx, ct.ID, client.ContainerAttachOptions{Stream: true, Stdin: stdin, Stdout: true, Stderr: true, DetachKeys: detachKeys})
			if err != nil {
				return err
			}
			defer att.Close()
			a.interact(ctx, att.HijackedResponse, tty, stdin, func(h, w uint) {
				_, _ = c.ContainerResize(ctx, ct.ID, client.ContainerResizeOptions{Height: h, Width: w}) // the next resize tries again
			})
			if tty && stdin && stillRunning(ctx, c, ct.ID) {
				return errors.New("read escape sequence") // detached, as docker says it
			}
			// The output ends when the container does: docker attach exits
			// with its code, which lodged may record a moment after the
			// stream closes, so wait for it rather than look once.
			res := c.ContainerWait(ctx, ct.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
			select {
			case r := <-res.Result:
				if r.StatusCode != 0 {
					return exitError{int(r.StatusCode)}
				}
			case err := <-res.Error:
				return a.explain(err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "do not attach stdin")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "key sequence to detach (default ctrl-p,ctrl-q)")
	return cmd
}

// containerCmd is `lodge container ...`: docker's management-command
// spelling of the container verbs, and the home of prune.
func containerCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "container", Short: "Manage containers"}
	var force bool
	var filters []string
	prune := &cobra.Command{
		Use: "prune", Short: "Remove all stopped containers", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !force && !confirm("WARNING! This will remove all stopped containers.") {
				return nil
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.ContainerPrune(cmd.Context(), client.ContainerPruneOptions{Filters: parseFilters(filters)})
			if err != nil {
				return a.explain(err)
			}
			printPruned(a.out, "Deleted Containers:", res.Report.ContainersDeleted, res.Report.SpaceReclaimed)
			return nil
		},
	}
	prune.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	prune.Flags().StringArrayVar(&filters, "filter", nil, "filter: until=, label=")
	cmd.AddCommand(prune,
		runCmd(a), createCmd(a), startCmd(a), stopCmd(a), restartCmd(a), killCmd(a), rmCmd(a), waitCmd(a),
		renameCmd(a), topCmd(a), attachCmd(a), logsCmd(a), execCmd(a), withUse(psCmd(a), "ls"),
		withUse(inspectTyped(a, "container"), "inspect CONTAINER..."),
		pauseCmd(a), unpauseCmd(a), updateCmd(a), statsCmd(a))
	return cmd
}

// inspectTyped is inspect limited to one kind of object.
func inspectTyped(a *app, kind string) *cobra.Command {
	cmd := inspectCmd(a)
	_ = cmd.Flags().Set("type", kind)  // inspectCmd's own string flag: cannot fail
	_ = cmd.Flags().MarkHidden("type") // as above
	return cmd
}

func withUse(cmd *cobra.Command, use string) *cobra.Command {
	cmd.Use = use
	return cmd
}

// parseFilters turns repeated key=value flags into API filters.
func parseFilters(kvs []string) client.Filters {
	f := client.Filters{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		f.Add(k, v)
	}
	return f
}

// confirm asks on the terminal; without one it refuses, so a script must
// say --force.
func confirm(prompt string) bool {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		fmt.Fprintln(os.Stderr, prompt+" Not a terminal: use --force to go ahead.")
		return false
	}
	fmt.Fprint(os.Stderr, prompt+"\nAre you sure you want to continue? [y/N] ")
	var ans string
	_, _ = fmt.Scanln(&ans) // no answer is no
	return strings.EqualFold(strings.TrimSpace(ans), "y")
}

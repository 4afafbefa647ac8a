package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// runFlags are the `lodge run`/`lodge create` options lodge supports.
type runFlags struct {
	detach, interactive, tty, rm, readOnly, privileged, init bool
	name, workdir, user, entrypoint, hostname, restart       string
	userns, runtime                                          string
	env, envFiles, volumes, tmpfs, capAdd, capDrop           []string
	securityOpt, labels                                      []string
	net                                                      netFlags
	resources                                                resourceFlags
	more                                                     moreRunFlags
	flags                                                    *pflag.FlagSet
}

func (f *runFlags) register(cmd *cobra.Command, run bool) {
	fl := cmd.Flags()
	fl.SetInterspersed(false) // flags after the image belong to the command
	if run {
		fl.BoolVarP(&f.detach, "detach", "d", false, "run in the background and print the container ID")
		fl.BoolVar(&f.rm, "rm", false, "remove the container when it exits")
	}
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep stdin open")
	fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-TTY")
	fl.BoolVar(&f.readOnly, "read-only", false, "mount the root filesystem read-only")
	fl.BoolVar(&f.privileged, "privileged", false, "every capability the user namespace allows")
	fl.BoolVar(&f.init, "init", false, "run an init as pid 1")
	fl.StringVar(&f.name, "name", "", "container name")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory")
	fl.StringVarP(&f.user, "user", "u", "", "user[:group]")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "override the image's entrypoint")
	fl.StringVar(&f.hostname, "hostname", "", "container host name")
	fl.StringVar(&f.userns, "userns", "", "keep-id: your uid and gid are the same inside the container as outside")
	fl.StringVar(&f.runtime, "runtime", "", "OCI runtime binary to run on (runc, crun, or one in daemon.json) instead of lodge's own")
	fl.StringVar(&f.restart, "restart", "no", "restart policy: no, always, unless-stopped, on-failure[:N]")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable")
	fl.StringArrayVar(&f.envFiles, "env-file", nil, "read environment variables from a file")
	fl.StringArrayVarP(&f.volumes, "volume", "v", nil, "bind mount host:container[:ro]")
	fl.StringArrayVar(&f.tmpfs, "tmpfs", nil, "mount a tmpfs: path[:options]")
	fl.StringArrayVar(&f.capAdd, "cap-add", nil, "add a capability")
	fl.StringArrayVar(&f.capDrop, "cap-drop", nil, "drop a capability")
	fl.StringArrayVar(&f.securityOpt, "security-opt", nil, "no-new-privileges[=false], seccomp=unconfined|FILE, systempaths=unconfined")
	fl.StringArrayVarP(&f.labels, "label", "l", nil, "set a label key=value")
	f.net.register(cmd)
	f.resources.register(fl)
	f.more.register(fl, run)
	f.flags = fl
}

// configs turns the flags and "IMAGE [COMMAND...]" into the API's request.
func (f *runFlags) configs(args []string) (*container.Config, *container.HostConfig, error) {
	env := append([]string{}, f.env...)
	for _, path := range f.envFiles {
		e, err := readEnvFile(path)
		if err != nil {
			return nil, nil, err
		}
		env = append(e, env...)
	}
	cfg := &container.Config{
		Image: args[0], Cmd: args[1:], Env: env, WorkingDir: f.workdir, User: f.user, Hostname: f.hostname,
		Tty: f.tty, OpenStdin: f.interactive, StdinOnce: f.interactive, AttachStdin: f.interactive,
		AttachStdout: !f.detach, AttachStderr: !f.detach, Labels: map[string]string{},
	}
	if f.entrypoint != "" {
		cfg.Entrypoint = []string{f.entrypoint}
	}
	for _, l := range f.labels {
		k, v, _ := strings.Cut(l, "=")
		cfg.Labels[k] = v
	}
	rp, err := parseRestart(f.restart)
	if err != nil {
		return nil, nil, err
	}
	hc := &container.HostConfig{
		AutoRemove: f.rm, ReadonlyRootfs: f.readOnly, Privileged: f.privileged, RestartPolicy: rp,
		Binds: f.volumes, CapAdd: f.capAdd, CapDrop: f.capDrop, SecurityOpt: f.securityOpt,
		UsernsMode: container.UsernsMode(f.userns), Runtime: f.runtime,
	}
	if f.init {
		hc.Init = &f.init
	}
	if hc.Resources, err = f.resources.resources(); err != nil {
		return nil, nil, err
	}
	if err := f.more.apply(f.flags, cfg, hc); err != nil {
		return nil, nil, err
	}
	if len(f.tmpfs) > 0 {
		hc.Tmpfs = map[string]string{}
		for _, t := range f.tmpfs {
			p, o, _ := strings.Cut(t, ":")
			hc.Tmpfs[p] = o
		}
	}
	if f.tty {
		if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			hc.ConsoleSize = [2]uint{uint(h), uint(w)}
		}
	}
	return cfg, hc, nil
}

// create makes the container the flags and "IMAGE [COMMAND...]" describe;
// it returns the client it used, the container's ID and its config.
func (f *runFlags) create(ctx context.Context, a *app, args []string) (*client.Client, string, *container.Config, error) {
	c, err := a.client()
	if err != nil {
		return nil, "", nil, err
	}
	cfg, hc, err := f.configs(args)
	if err != nil {
		return nil, "", nil, err
	}
	nc, err := f.net.apply(cfg, hc)
	if err != nil {
		return nil, "", nil, err
	}
	o := client.ContainerCreateOptions{Config: cfg, HostConfig: hc, NetworkingConfig: nc, Name: f.name}
	if f.more.platform != "" {
		p, err := parsePlatform(f.more.platform)
		if err != nil {
			return nil, "", nil, err
		}
		o.Platform = &p
	}
	res, err := f.more.createPulling(ctx, a, c, o)
	if err != nil {
		return nil, "", nil, a.explain(err)
	}
	printWarnings(res.Warnings)
	return c, res.ID, cfg, nil
}

// parseRestart reads --restart as Docker does.
func parseRestart(s string) (container.RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	rp := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	switch rp.Name {
	case "", "no", "always", "unless-stopped":
		if hasCount {
			return rp, fmt.Errorf("invalid restart policy %q: only on-failure takes a count", s)
		}
	case "on-failure":
		if hasCount {
			n, err := strconv.Atoi(count)
			if err != nil || n < 0 {
				return rp, fmt.Errorf("invalid restart policy %q: bad count", s)
			}
			rp.MaximumRetryCount = n
		}
	default:
		return rp, fmt.Errorf("invalid restart policy %q", s)
	}
	return rp, nil
}

// readEnvFile reads KEY=VALUE lines; a bare KEY takes the caller's value;
// blank lines and # comments are skipped.
func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if !strings.Contains(l, "=") {
			if v, ok := os.LookupEnv(l); ok {
				l += "=" + v
			} else {
				continue
			}
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

// exitError carries a container's exit code to lodge's own.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func createCmd(a *app) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use: "create [OPTIONS] IMAGE [COMMAND] [ARG...]", Short: "Create a container", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, id, _, err := f.create(cmd.Context(), a, args)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.out, id)
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}

func runCmd(a *app) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use: "run [OPTIONS] IMAGE [COMMAND] [ARG...]", Short: "Create and run a container", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, id, cfg, err := f.create(ctx, a, args)
			if err != nil {
				return err
			}
			if f.detach {
				if _, err := c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
					return err
				}
				fmt.Fprintln(a.out, id)
				return nil
			}
			return a.attachAndRun(ctx, c, id, cfg, attachOptions{rm: f.rm, detachKeys: f.more.detachKeys, sigProxy: f.more.sigProxy})
		},
	}
	f.register(cmd, true)
	return cmd
}

// attachAndRun attaches to a created container, starts it, streams its
// output until it ends and returns its exit code as an exitError.
func (a *app) attachAndRun(ctx context.Context, c *client.Client, id string, cfg *container.Config, o attachOptions) error {
	cond := container.WaitConditionNextExit
	if o.rm {
		cond = container.WaitConditionRemoved
	}
	wait := c.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: cond})
	att, err := c.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdin: cfg.OpenStdin && cfg.AttachStdin, Stdout: cfg.AttachStdout, Stderr: cfg.AttachStderr, DetachKeys: o.detachKeys})
	if err != nil {
		return err
	}
	if o.sigProxy && !cfg.Tty {
		stop := proxySignals(ctx, c, id)
		defer stop()
	}
	defer att.Close()
	restore := func() {}
	if cfg.Tty && cfg.OpenStdin && term.IsTerminal(int(os.Stdin.Fd())) {
		if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
			restore = func() { _ = term.Restore(int(os.Stdin.Fd()), st) } // nothing more to try if it fails
		}
	}
	defer restore()
	outDone := make(chan struct{})
	go func() {
		if cfg.Tty {
			_, _ = io.Copy(os.Stdout, att.Reader) // a stream ends when either end goes
		} else {
			_, _ = stdcopy.StdCopy(os.Stdout, os.Stderr, att.Reader) // as above
		}
		close(outDone)
	}()
	if cfg.OpenStdin && cfg.AttachStdin {
		go func() {
			_, _ = io.Copy(att.Conn, os.Stdin) // as above
			_ = att.CloseWrite()               // the container may be gone already
		}()
	}
	if _, err := c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		restore()
		return err
	}
	if cfg.Tty {
		a.forwardResize(ctx, func(h, w uint) {
			_, _ = c.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w}) // the next resize tries again
		})
	}
	// With a tty, lodged ends the stream on the detach keys (ctrl-p
	// ctrl-q) and the container runs on: then run returns, as docker's.
	detached := outDone
	if !cfg.Tty || !cfg.OpenStdin {
		detached = nil
	}
	for {
		select {
		case r := <-wait.Result:
			select { // let the last output through
			case <-outDone:
			case <-time.After(2 * time.Second):
			}
			if r.StatusCode != 0 {
				restore()
				return exitError{int(r.StatusCode)}
			}
			return nil
		case err := <-wait.Error:
			return err
		case <-detached:
			detached = nil
			if stillRunning(ctx, c, id) {
				return nil
			}
		}
	}
}

// stillRunning reports whether a container whose attach stream ended is
// running: lodged ends a stream for the container's exit only once the
// exit is recorded, so running means the user detached.
func stillRunning(ctx context.Context, c *client.Client, id string) bool {
	insp, err := c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	return err == nil && insp.Container.State != nil && insp.Container.State.Running
}

// interact joins the terminal to a hijacked attach or exec stream until
// the stream ends: raw mode and resizes with a tty and interactive stdin,
// stdin copied (its end half-closes the stream), output demultiplexed
// without a tty.
func (a *app) interact(ctx context.Context, conn client.HijackedResponse, tty, stdin bool, resize func(h, w uint)) {
	if tty && stdin && term.IsTerminal(int(os.Stdin.Fd())) {
		if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
			defer func() { _ = term.Restore(int(os.Stdin.Fd()), st) }() // nothing more to try if it fails
		}
		a.forwardResize(ctx, resize)
	}
	if stdin {
		go func() {
			_, _ = io.Copy(conn.Conn, os.Stdin) // a stream ends when either end goes
			_ = conn.CloseWrite()               // the container may be gone already
		}()
	}
	if tty {
		_, _ = io.Copy(os.Stdout, conn.Reader) // a stream ends when either end goes
	} else {
		_, _ = stdcopy.StdCopy(os.Stdout, os.Stderr, conn.Reader) // as above
	}
}

// forwardResize sends the terminal's size now and on every SIGWINCH.
func (a *app) forwardResize(ctx context.Context, resize func(h, w uint)) {
	send := func() {
		if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			resize(uint(h), uint(w))
		}
	}
	send()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ch:
				send()
			case <-ctx.Done():
				return
			}
		}
	}()
}

func startCmd(a *app) *cobra.Command {
	return eachCmd(a, "start CONTAINER...", "Start containers", func(ctx context.Context, c *client.Client, id string) error {
		_, err := c.ContainerStart(ctx, id, client.ContainerStartOptions{})
		return err
	})
}

func stopCmd(a *app) *cobra.Command {
	return stoppingCmd(a, "stop CONTAINER...", "Stop containers", func(ctx context.Context, c *client.Client, id string, timeout *int, sig string) error {
		_, err := c.ContainerStop(ctx, id, client.ContainerStopOptions{Signal: sig, Timeout: timeout})
		return err
	})
}

// stoppingCmd is a verb that stops containers (stop, restart): a signal,
// then a kill after --time seconds (nil: the container's own default).
func stoppingCmd(a *app, use, short string, do func(ctx context.Context, c *client.Client, id string, timeout *int, sig string) error) *cobra.Command {
	var t int
	var sig string
	cmd := eachCmd(a, use, short, func(ctx context.Context, c *client.Client, id string) error {
		var timeout *int
		if t >= 0 {
			timeout = &t
		}
		return do(ctx, c, id, timeout, sig)
	})
	cmd.Flags().IntVarP(&t, "time", "t", -1, "seconds to wait before killing")
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "signal to stop with")
	return cmd
}

func rmCmd(a *app) *cobra.Command {
	var force, vols bool
	cmd := eachCmd(a, "rm CONTAINER...", "Remove containers", func(ctx context.Context, c *client.Client, id string) error {
		_, err := c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: force, RemoveVolumes: vols})
		return err
	})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill a running container first")
	cmd.Flags().BoolVarP(&vols, "volumes", "v", false, "remove anonymous volumes")
	return cmd
}

// eachCmd is a command that does one thing to each named container and
// prints its name, as docker does.
func eachCmd(a *app, use, short string, do func(ctx context.Context, c *client.Client, id string) error) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var failed []string
			for _, id := range args {
				if err := do(cmd.Context(), c, id); err != nil {
					fmt.Fprintln(os.Stderr, "lodge:", a.explain(err))
					failed = append(failed, id)
					continue
				}
				fmt.Fprintln(a.out, id)
			}
			if len(failed) > 0 {
				return fmt.Errorf("failed: %s", strings.Join(failed, " "))
			}
			return nil
		},
	}
}

func psCmd(a *app) *cobra.Command {
	var all, quiet, size, noTrunc, latest bool
	var last int
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use: "ps [OPTIONS]", Short: "List containers", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := client.ContainerListOptions{All: all, Size: size, Limit: last, Filters: parseFilters(filters)}
			if latest && last == -1 {
				opts.Limit = 1
			}
			if format != "" {
				uses, err := psNeedsSize(format)
				if err != nil {
					return err
				}
				if uses && !quiet && !cmd.Flags().Changed("size") {
					opts.Size = true
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.ContainerList(cmd.Context(), opts)
			if err != nil {
				return a.explain(err)
			}
			f := listFormat(format, quiet, func(ps, _, _, _ string) string { return ps })
			return writeContainers(a.out, res.Items, f, quiet, opts.Size, noTrunc)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	fl.BoolVarP(&size, "size", "s", false, "Display total file sizes")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.IntVarP(&last, "last", "n", -1, "Show n last created containers (includes all states)")
	fl.BoolVarP(&latest, "latest", "l", false, "Show the latest created container (includes all states)")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided (status=, name=, label=, id=, ancestor=, exited=, network=, volume=)")
	fl.StringVar(&format, "format", "", formatHelp)
	return cmd
}

// formatHelp is docker's --format help for list commands.
const formatHelp = `Format output using a custom template:
'table':            Print output in table format with column headers (default)
'table TEMPLATE':   Print output in table format using the given Go template
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.`

// printRows prints rows with a Go template; "table ..." adds a header of
// the field names and aligns the columns.
func printRows[T any](w io.Writer, format string, rows []T) error {
	table := strings.HasPrefix(format, "table ")
	format = strings.TrimPrefix(format, "table ")
	tmpl, err := template.New("format").Parse(format)
	if err != nil {
		return fmt.Errorf("invalid --format: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	if table {
		header := strings.NewReplacer("{{.", "", "}}", "").Replace(format)
		fmt.Fprintln(tw, strings.ToUpper(header))
	}
	for _, r := range rows {
		if err := tmpl.Execute(tw, r); err != nil {
			return err
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func logsCmd(a *app) *cobra.Command {
	var o client.ContainerLogsOptions
	cmd := &cobra.Command{
		Use: "logs CONTAINER", Short: "Show a container's output", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			insp, err := c.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return a.explain(err)
			}
			o.ShowStdout, o.ShowStderr = true, true
			r, err := c.ContainerLogs(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			defer r.Close()
			if insp.Container.Config != nil && insp.Container.Config.Tty {
				_, err = io.Copy(os.Stdout, r)
			} else {
				_, err = stdcopy.StdCopy(os.Stdout, os.Stderr, r)
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "keep following the output")
	cmd.Flags().BoolVarP(&o.Timestamps, "timestamps", "t", false, "show timestamps")
	cmd.Flags().StringVarP(&o.Tail, "tail", "n", "all", "lines from the end to show")
	cmd.Flags().StringVar(&o.Since, "since", "", "show logs since a timestamp or duration (e.g. 5m)")
	return cmd
}

func execCmd(a *app) *cobra.Command {
	var interactive, tty, detach bool
	var user, workdir string
	var env []string
	cmd := &cobra.Command{
		Use: "exec [OPTIONS] CONTAINER COMMAND [ARG...]", Short: "Run a command in a running container", Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ex, err := c.ExecCreate(ctx, args[0], client.ExecCreateOptions{
				User: user, TTY: tty, AttachStdin: interactive, AttachStdout: !detach, AttachStderr: !detach,
				Env: env, WorkingDir: workdir, Cmd: args[1:],
			})
			if err != nil {
				return a.explain(err)
			}
			if detach {
				_, err := c.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true})
				return err
			}
			att, err := c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{TTY: tty})
			if err != nil {
				return err
			}
			defer att.Close()
			a.interact(ctx, att.HijackedResponse, tty, interactive, func(h, w uint) {
				_, _ = c.ExecResize(ctx, ex.ID, client.ExecResizeOptions{Height: h, Width: w}) // the next resize tries again
			})
			res, err := c.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
			if err != nil {
				return err
			}
			if res.ExitCode != 0 {
				return exitError{res.ExitCode}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&interactive, "interactive", "i", false, "keep stdin open")
	fl.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-TTY")
	fl.BoolVarP(&detach, "detach", "d", false, "run in the background")
	fl.StringVarP(&user, "user", "u", "", "user[:group]")
	fl.StringVarP(&workdir, "workdir", "w", "", "working directory")
	fl.StringArrayVarP(&env, "env", "e", nil, "set an environment variable")
	return cmd
}

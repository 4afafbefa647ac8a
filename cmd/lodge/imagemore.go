package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/credentials"
	"github.com/docker/cli/cli/config/types"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func historyCmd(a *app) *cobra.Command {
	var quiet, noTrunc bool
	cmd := &cobra.Command{
		Use: "history IMAGE", Short: "Show how an image was built, layer by layer", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.ImageHistory(cmd.Context(), args[0])
			if err != nil {
				return a.explain(err)
			}
			tw := tabwriter.NewWriter(a.out, 0, 0, 3, ' ', 0)
			if !quiet {
				fmt.Fprintln(tw, "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
			}
			for _, h := range res.Items {
				id := h.ID
				if !noTrunc && strings.HasPrefix(id, "sha256:") {
					id = strings.TrimPrefix(id, "sha256:")[:12]
				}
				if quiet {
					fmt.Fprintln(tw, id)
					continue
				}
				by := strings.Join(strings.Fields(h.CreatedBy), " ")
				if !noTrunc && len(by) > 45 {
					by = by[:44] + "…"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, ago(time.Unix(h.Created, 0)), by, humanSize(h.Size), h.Comment)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only image IDs")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not shorten the output")
	return cmd
}

// ago is docker's "3 weeks ago".
func ago(t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return "N/A"
	}
	d := time.Since(t)
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{365 * 24 * time.Hour, "year"}, {30 * 24 * time.Hour, "month"}, {7 * 24 * time.Hour, "week"}, {24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}} {
		if n := int(d / u.d); n >= 1 {
			if n == 1 {
				return "1 " + u.name + " ago"
			}
			return fmt.Sprintf("%d %ss ago", n, u.name)
		}
	}
	return "Less than a minute ago"
}

// importCmd makes an image of one layer from a tar of a root filesystem:
// a file, "-" for stdin.
func importCmd(a *app) *cobra.Command {
	var changes []string
	var message, platform string
	cmd := &cobra.Command{
		Use: "import FILE|- [REPOSITORY[:TAG]]", Short: "Make an image from a root filesystem tar", Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var r io.Reader = os.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			o := client.ImageImportOptions{Changes: changes, Message: message}
			if platform != "" {
				if o.Platform, err = parsePlatform(platform); err != nil {
					return err
				}
			}
			res, err := c.ImageImport(cmd.Context(), client.ImageImportSource{Source: r, SourceName: "-"}, ref, o)
			if err != nil {
				return a.explain(err)
			}
			defer res.Close()
			return printStream(res)
		},
	}
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "Dockerfile instruction to apply (CMD, ENV, WORKDIR, ...)")
	cmd.Flags().StringVarP(&message, "message", "m", "", "commit message for the image's history")
	cmd.Flags().StringVar(&platform, "platform", "", "os/arch[/variant] of the image")
	return cmd
}

// imageCmd is `lodge image ...`: docker's management-command spelling of
// the image verbs, and the home of prune and inspect.
func imageCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images"}
	var all, force bool
	var filters []string
	prune := &cobra.Command{
		Use: "prune", Short: "Remove unused images", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			warning := "WARNING! This will remove all dangling images."
			if all {
				warning = "WARNING! This will remove all images without at least one container associated to them."
			}
			if !force && !confirm(warning) {
				return nil
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			f := parseFilters(filters)
			if all {
				f.Add("dangling", "false")
			}
			res, err := c.ImagePrune(cmd.Context(), client.ImagePruneOptions{Filters: f})
			if err != nil {
				return a.explain(err)
			}
			if len(res.Report.ImagesDeleted) > 0 {
				fmt.Fprintln(a.out, "Deleted Images:")
				for _, d := range res.Report.ImagesDeleted {
					if d.Untagged != "" {
						fmt.Fprintln(a.out, "untagged:", d.Untagged)
					}
					if d.Deleted != "" {
						fmt.Fprintln(a.out, "deleted:", d.Deleted)
					}
				}
				fmt.Fprintln(a.out)
			}
			fmt.Fprintf(a.out, "Total reclaimed space: %s\n", humanSize(int64(res.Report.SpaceReclaimed)))
			return nil
		},
	}
	prune.Flags().BoolVarP(&all, "all", "a", false, "remove every image no container uses, not only dangling ones")
	prune.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	prune.Flags().StringArrayVar(&filters, "filter", nil, "filter: until=, label=")
	cmd.AddCommand(prune, withUse(inspectTyped(a, "image"), "inspect IMAGE..."), withUse(imagesCmd(a), "ls"),
		pullCmd(a), pushCmd(a), tagCmd(a), withUse(rmiCmd(a), "rm IMAGE..."), loadCmd(a), saveCmd(a),
		historyCmd(a), importCmd(a))
	return cmd
}

// loginCmd checks credentials with the registry through lodged (POST
// /auth) and stores them where docker does, so lodged's pulls and pushes
// and the docker CLI both use them.
func loginCmd(a *app) *cobra.Command {
	var user, password string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use: "login [OPTIONS] [SERVER]", Short: "Log in to a registry", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := serverKey(args)
			in := bufio.NewReader(os.Stdin)
			if passwordStdin {
				if password != "" {
					return fmt.Errorf("--password and --password-stdin are mutually exclusive")
				}
				b, err := io.ReadAll(in)
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			if user == "" {
				fmt.Fprint(os.Stderr, "Username: ")
				l, _ := in.ReadString('\n')
				user = strings.TrimSpace(l)
			}
			if password == "" && !passwordStdin {
				if !term.IsTerminal(int(os.Stdin.Fd())) {
					return fmt.Errorf("cannot ask for a password without a terminal: use --password-stdin")
				}
				fmt.Fprint(os.Stderr, "Password: ")
				b, err := term.ReadPassword(int(os.Stdin.Fd()))
				fmt.Fprintln(os.Stderr)
				if err != nil {
					return err
				}
				password = string(b)
			}
			if user == "" || password == "" {
				return fmt.Errorf("a username and a password are needed")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			res, err := c.RegistryLogin(ctx, client.RegistryLoginOptions{Username: user, Password: password, ServerAddress: server})
			if err != nil {
				return a.explain(err)
			}
			cf, err := config.Load(config.Dir())
			if err != nil {
				return err
			}
			auth := types.AuthConfig{ServerAddress: server, Username: user, Password: password}
			if res.Auth.IdentityToken != "" {
				auth.Password, auth.IdentityToken = "", res.Auth.IdentityToken
			}
			if err := cf.GetCredentialsStore(server).Store(auth); err != nil {
				return fmt.Errorf("the registry accepted the credentials, but saving them failed: %w", err)
			}
			fmt.Fprintln(a.out, "Login Succeeded")
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "user name")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password (prefer --password-stdin)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
	return cmd
}

func logoutCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use: "logout [SERVER]", Short: "Forget a registry's credentials", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := serverKey(args)
			cf, err := config.Load(config.Dir())
			if err != nil {
				return err
			}
			if _, ok := cf.GetAuthConfigs()[server]; !ok && cf.CredentialsStore == "" && cf.CredentialHelpers[server] == "" {
				fmt.Fprintf(a.out, "Not logged in to %s\n", server)
				return nil
			}
			fmt.Fprintf(a.out, "Removing login credentials for %s\n", server)
			return cf.GetCredentialsStore(server).Erase(server)
		},
	}
}

// serverKey is the key docker uses for a registry in config.json: Docker
// Hub's historical URL for it and its aliases, the host[:port] for others.
// args are the command's: the server, or none for Docker Hub.
func serverKey(args []string) string {
	server := ""
	if len(args) > 0 {
		server = args[0]
	}
	switch h := credentials.ConvertToHostname(server); h {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return "https://index.docker.io/v1/"
	default:
		return h
	}
}

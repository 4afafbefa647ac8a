package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// printStream shows a pull, push or load progress stream as docker does.
func printStream(r io.Reader) error { return printStreamTo(r, os.Stdout) }

// printStreamTo shows a pull, push or load's progress on w: the docker
// CLI's progress bars on a terminal, plain lines otherwise.
func printStreamTo(r io.Reader, w *os.File) error {
	fd := w.Fd()
	return jsonmessage.DisplayJSONMessagesStream(r, w, fd, term.IsTerminal(int(fd)), nil)
}

// drainStream reads a progress stream without showing it, for the error
// at its end.
func drainStream(r io.Reader) error {
	return jsonmessage.DisplayJSONMessagesStream(r, io.Discard, 0, false, nil)
}

func pullCmd(a *app) *cobra.Command {
	var platform string
	var quiet, allTags bool
	cmd := &cobra.Command{
		Use: "pull [OPTIONS] NAME[:TAG|@DIGEST]", Short: "Download an image from a registry", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// As docker pull: a bare name means :latest (and says so), and
			// the last line names what was pulled in full.
			ref, err := reference.ParseNormalizedNamed(args[0])
			switch {
			case err != nil:
				return err
			case allTags && !reference.IsNameOnly(ref):
				return errors.New("tag can't be used with --all-tags/-a")
			case !allTags && reference.IsNameOnly(ref):
				ref = reference.TagNameOnly(ref)
				if t, ok := ref.(reference.Tagged); ok && !quiet {
					fmt.Fprintln(a.out, "Using default tag:", t.Tag())
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			o := client.ImagePullOptions{All: allTags}
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				o.Platforms = append(o.Platforms, p)
			}
			r, err := c.ImagePull(cmd.Context(), reference.FamiliarString(ref), o)
			if err != nil {
				return a.explain(err)
			}
			defer r.Close()
			if quiet {
				err = drainStream(r)
			} else {
				err = printStream(r)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(a.out, ref.String())
			return nil
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable (os/arch[/variant])")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	cmd.Flags().BoolVarP(&allTags, "all-tags", "a", false, "Download all tagged images in the repository")
	return cmd
}

func pushCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use: "push IMAGE", Short: "Upload an image to a registry", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.ImagePush(cmd.Context(), args[0], client.ImagePushOptions{})
			if err != nil {
				return a.explain(err)
			}
			defer r.Close()
			return printStream(r)
		},
	}
}

func imagesCmd(a *app) *cobra.Command {
	var all, quiet, digests, noTrunc bool
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use: "images [OPTIONS] [REPOSITORY[:TAG]]", Short: "List images", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := parseFilters(filters)
			if len(args) == 1 {
				f.Add("reference", args[0])
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.ImageList(cmd.Context(), client.ImageListOptions{All: all, Filters: f})
			if err != nil {
				return a.explain(err)
			}
			return writeImages(a.out, res.Items, listFormat(format, quiet, func(_, images, _, _ string) string { return images }), quiet, digests, noTrunc)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all images (default hides intermediate images)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	fl.BoolVar(&digests, "digests", false, "Show digests")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided (dangling=, reference=, label=, before=, since=)")
	fl.StringVar(&format, "format", "", formatHelp)
	return cmd
}

func humanSize(n int64) string {
	const unit = 1000.0
	f := float64(n)
	for _, u := range []string{"B", "kB", "MB", "GB"} {
		if f < unit {
			return fmt.Sprintf("%.3g%s", f, u)
		}
		f /= unit
	}
	return fmt.Sprintf("%.3gTB", f)
}

func tagCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use: "tag SOURCE TARGET", Short: "Give an image another name", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			_, err = c.ImageTag(cmd.Context(), client.ImageTagOptions{Source: args[0], Target: args[1]})
			return a.explain(err)
		},
	}
}

func rmiCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use: "rmi IMAGE...", Short: "Remove images", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var failed []string
			for _, ref := range args {
				res, err := c.ImageRemove(cmd.Context(), ref, client.ImageRemoveOptions{Force: force})
				if err != nil {
					fmt.Fprintln(os.Stderr, "lodge:", a.explain(err))
					failed = append(failed, ref)
					continue
				}
				for _, d := range res.Items {
					if d.Untagged != "" {
						fmt.Fprintln(a.out, "Untagged:", d.Untagged)
					}
					if d.Deleted != "" {
						fmt.Fprintln(a.out, "Deleted:", d.Deleted)
					}
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("failed: %s", strings.Join(failed, " "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove even with several names")
	return cmd
}

func loadCmd(a *app) *cobra.Command {
	var input string
	cmd := &cobra.Command{
		Use: "load", Short: "Load images from a docker-archive (stdin or -i)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var in io.Reader = os.Stdin
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			res, err := c.ImageLoad(cmd.Context(), in)
			if err != nil {
				return a.explain(err)
			}
			defer res.Close()
			return printStream(res)
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "archive to read instead of stdin")
	return cmd
}

func saveCmd(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use: "save IMAGE...", Short: "Write images to a docker-archive (stdout or -o)", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if output == "" && term.IsTerminal(int(os.Stdout.Fd())) {
				return fmt.Errorf("refusing to write an archive to a terminal; use -o or redirect")
			}
			res, err := c.ImageSave(cmd.Context(), args)
			if err != nil {
				return a.explain(err)
			}
			defer res.Close()
			var out io.Writer = os.Stdout
			if output != "" {
				f, err := os.CreateTemp(dirOf(output), ".lodge-save-*")
				if err != nil {
					return err
				}
				defer func() { _ = os.Remove(f.Name()) }() // gone after the rename; left only by a failure reported below
				if _, err := io.Copy(f, res); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
				return os.Rename(f.Name(), output) // never a half-written archive
			}
			_, err = io.Copy(out, res)
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write instead of stdout")
	return cmd
}

func dirOf(path string) string {
	if i := strings.LastIndex(path, "/"); i >= 0 {
		return path[:i+1]
	}
	return "."
}

// parsePlatform reads os/arch[/variant].
func parsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]", s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

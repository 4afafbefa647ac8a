package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// volumeCmd is `lodge volume ...`: create, ls, inspect, rm and prune, as
// docker has them.
func volumeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Manage volumes"}
	cmd.AddCommand(volumeCreateCmd(a), volumeLsCmd(a), volumeInspectCmd(a), volumeRmCmd(a), volumePruneCmd(a))
	return cmd
}

// keyValues turns repeated key=value flags into a map.
func keyValues(kvs []string) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func volumeCreateCmd(a *app) *cobra.Command {
	var driver string
	var opts, labels []string
	cmd := &cobra.Command{
		Use: "create [OPTIONS] [VOLUME]", Short: "Create a volume", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			o := client.VolumeCreateOptions{Driver: driver, DriverOpts: keyValues(opts), Labels: keyValues(labels)}
			if len(args) == 1 {
				o.Name = args[0]
			}
			res, err := c.VolumeCreate(cmd.Context(), o)
			if err != nil {
				return a.explain(err)
			}
			fmt.Fprintln(a.out, res.Volume.Name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&driver, "driver", "d", "local", "volume driver")
	cmd.Flags().StringArrayVarP(&opts, "opt", "o", nil, "driver option: type=tmpfs|none, device=, o=")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "label key=value")
	return cmd
}

func volumeLsCmd(a *app) *cobra.Command {
	var quiet bool
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use: "ls", Aliases: []string{"list"}, Short: "List volumes", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.VolumeList(cmd.Context(), client.VolumeListOptions{Filters: parseFilters(filters)})
			if err != nil {
				return a.explain(err)
			}
			return writeVolumes(a.out, res.Items, listFormat(format, quiet, func(_, _, volumes, _ string) string { return volumes }), quiet)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "Provide filter values (e.g. \"dangling=true\"; name=, label=, driver=)")
	cmd.Flags().StringVar(&format, "format", "", formatHelp)
	return cmd
}

func volumeInspectCmd(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use: "inspect [OPTIONS] VOLUME...", Short: "Show volumes' details", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return a.inspect(cmd.Context(), c, args, format, func(ctx context.Context, name string) (json.RawMessage, error) {
				res, err := c.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
				return res.Raw, err
			})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Go template for each volume")
	return cmd
}

func volumeRmCmd(a *app) *cobra.Command {
	var force bool
	cmd := eachCmd(a, "rm VOLUME...", "Remove volumes", func(ctx context.Context, c *client.Client, name string) error {
		_, err := c.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: force})
		return err
	})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "no error for a missing volume")
	return cmd
}

func volumePruneCmd(a *app) *cobra.Command {
	var all, force bool
	var filters []string
	cmd := &cobra.Command{
		Use: "prune", Short: "Remove volumes no container uses", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			warning := "WARNING! This will remove anonymous local volumes not used by at least one container."
			if all {
				warning = "WARNING! This will remove all local volumes not used by at least one container."
			}
			if !force && !confirm(warning) {
				return nil
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.VolumePrune(cmd.Context(), client.VolumePruneOptions{All: all, Filters: parseFilters(filters)})
			if err != nil {
				return a.explain(err)
			}
			printPruned(a.out, "Deleted Volumes:", res.Report.VolumesDeleted, res.Report.SpaceReclaimed)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "named volumes too, not only anonymous ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "filter: label=")
	return cmd
}

// printPruned reports what a prune removed, as docker words it.
func printPruned(w io.Writer, title string, removed []string, reclaimed uint64) {
	if len(removed) > 0 {
		fmt.Fprintln(w, title)
		for _, n := range removed {
			fmt.Fprintln(w, n)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Total reclaimed space: %s\n", humanSize(int64(reclaimed)))
}

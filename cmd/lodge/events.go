package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func eventsCmd(a *app) *cobra.Command {
	var since, until, format string
	var filters []string
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show lodged's events as they happen (containers, images, volumes, networks)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			res := c.Events(cmd.Context(), client.EventsListOptions{Since: since, Until: until, Filters: parseFilters(filters)})
			for {
				select {
				case m := <-res.Messages:
					if err := printEvent(a.out, m, format); err != nil {
						return err
					}
				case err := <-res.Err:
					if err == nil || errors.Is(err, io.EOF) {
						return nil
					}
					return a.explain(err)
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "show events since this time (RFC 3339, Unix seconds or a duration such as 10m)")
	f.StringVar(&until, "until", "", "stop at this time; without it, follow")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter as key=value (type, event, container, image, label, network, volume)")
	f.StringVar(&format, "format", "", "json for one JSON object a line; default, docker's text")
	return cmd
}

// printEvent writes one event as `docker events` does: its time, type,
// action and actor with its attributes, or the JSON message.
func printEvent(w io.Writer, m events.Message, format string) error {
	if format == "json" || format == "{{json .}}" {
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	var attrs []string
	for k, v := range m.Actor.Attributes {
		attrs = append(attrs, k+"="+v)
	}
	sort.Strings(attrs)
	t := time.Unix(0, m.TimeNano).Format("2006-01-02T15:04:05.000000000Z07:00")
	_, err := fmt.Fprintf(w, "%s %s %s %s (%s)\n", t, m.Type, m.Action, m.Actor.ID, strings.Join(attrs, ", "))
	return err
}

func builderCmd(a *app) *cobra.Command {
	b := &cobra.Command{Use: "builder", Short: "Manage the build cache"}
	var all, force bool
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove the build cache (the classic builder's and BuildKit's)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.BuildCachePrune(cmd.Context(), client.BuildCachePruneOptions{All: all})
			if err != nil {
				return a.explain(err)
			}
			for _, id := range res.Report.CachesDeleted {
				fmt.Fprintln(a.out, "Deleted build cache object:", id)
			}
			fmt.Fprintf(a.out, "Total reclaimed space: %d B\n", res.Report.SpaceReclaimed)
			return nil
		},
	}
	prune.Flags().BoolVarP(&all, "all", "a", false, "remove all build cache, not only dangling")
	prune.Flags().BoolVarP(&force, "force", "f", false, "do not ask (lodge never asks)")
	b.AddCommand(prune)
	return b
}

package main

import (
	"fmt"
	"runtime"
	"text/tabwriter"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/lodge-containers/lodge/version"
)

func versionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the lodge client and server versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := tabwriter.NewWriter(a.out, 0, 0, 1, ' ', 0)
			fmt.Fprintf(w, "Client:\n Version:\t%s\n API version:\t%s\n Go version:\t%s\n OS/Arch:\t%s/%s\n\n",
				version.Version, version.APIVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			w.Flush()
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			v, err := c.ServerVersion(cmd.Context(), client.ServerVersionOptions{})
			if err != nil {
				return a.explain(err)
			}
			fmt.Fprintf(w, "Server: %s\n Version:\t%s\n API version:\t%s (minimum %s)\n OS/Arch:\t%s/%s\n", v.Platform.Name, v.Version, v.APIVersion, v.MinAPIVersion, v.Os, v.Arch)
			for _, comp := range v.Components {
				if comp.Name != "Engine" {
					fmt.Fprintf(w, " %s:\t%s\n", comp.Name, comp.Version)
				}
			}
			return w.Flush()
		},
	}
}

func infoCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show how lodged runs here: id maps, storage, network, cgroups, paths",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.Info(cmd.Context(), client.InfoOptions{})
			if err != nil {
				return a.explain(err)
			}
			in := res.Info
			w := tabwriter.NewWriter(a.out, 0, 0, 1, ' ', 0)
			fmt.Fprintf(w, "Server version:\t%s\n", in.ServerVersion)
			for _, kv := range in.SystemStatus {
				fmt.Fprintf(w, "%s:\t%s\n", kv[0], kv[1])
			}
			fmt.Fprintf(w, "Cgroup driver:\t%s (v%s)\n", in.CgroupDriver, in.CgroupVersion)
			fmt.Fprintf(w, "Security options:\t%v\n", in.SecurityOptions)
			fmt.Fprintf(w, "Containers:\t%d (running %d, paused %d, stopped %d)\n", in.Containers, in.ContainersRunning, in.ContainersPaused, in.ContainersStopped)
			fmt.Fprintf(w, "Images:\t%d\n", in.Images)
			fmt.Fprintf(w, "Kernel:\t%s\n", in.KernelVersion)
			fmt.Fprintf(w, "Operating system:\t%s (%s)\n", in.OperatingSystem, in.Architecture)
			fmt.Fprintf(w, "CPUs, memory:\t%d, %.1f GiB\n", in.NCPU, float64(in.MemTotal)/(1<<30))
			if err := w.Flush(); err != nil {
				return err
			}
			for _, warn := range in.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), warn)
			}
			if len(in.Warnings) > 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "lodged runs degraded here: 'lodge doctor' says what is missing and the fix, for you and for an administrator")
			}
			return nil
		},
	}
}

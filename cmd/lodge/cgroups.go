package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// resourceFlags are the resource limits of run, create and update, with
// Docker's names and units.
type resourceFlags struct {
	memory, memorySwap, memoryReservation string
	cpus                                  string
	cpuShares, cpuQuota, cpuPeriod        int64
	cpusetCpus, cpusetMems                string
	pidsLimit                             int64
	blkioWeight                           uint16
}

func (f *resourceFlags) register(fl *pflag.FlagSet) {
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit (e.g. 64m)")
	fl.StringVar(&f.memorySwap, "memory-swap", "", "memory plus swap limit; -1 for unlimited swap")
	fl.StringVar(&f.memoryReservation, "memory-reservation", "", "memory soft limit")
	fl.StringVar(&f.cpus, "cpus", "", "number of CPUs (e.g. 0.5)")
	fl.Int64VarP(&f.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight, 1024 by default)")
	fl.Int64Var(&f.cpuQuota, "cpu-quota", 0, "CPU CFS quota in µs per period")
	fl.Int64Var(&f.cpuPeriod, "cpu-period", 0, "CPU CFS period in µs")
	fl.StringVar(&f.cpusetCpus, "cpuset-cpus", "", "CPUs to run on (0-3, 0,1)")
	fl.StringVar(&f.cpusetMems, "cpuset-mems", "", "memory nodes to use (0-3, 0,1)")
	fl.Int64Var(&f.pidsLimit, "pids-limit", 0, "process limit; -1 for unlimited")
	fl.Uint16Var(&f.blkioWeight, "blkio-weight", 0, "block I/O weight, 10 to 1000")
}

// resources turns the flags into the API's resources.
func (f *resourceFlags) resources() (container.Resources, error) {
	r := container.Resources{
		CPUShares: f.cpuShares, CPUQuota: f.cpuQuota, CPUPeriod: f.cpuPeriod,
		CpusetCpus: f.cpusetCpus, CpusetMems: f.cpusetMems, BlkioWeight: f.blkioWeight,
	}
	for _, m := range []struct {
		flag, v string
		dst     *int64
	}{{"memory", f.memory, &r.Memory}, {"memory-swap", f.memorySwap, &r.MemorySwap}, {"memory-reservation", f.memoryReservation, &r.MemoryReservation}} {
		switch {
		case m.v == "":
		case m.v == "-1":
			*m.dst = -1
		default:
			n, err := units.RAMInBytes(m.v)
			if err != nil {
				return r, fmt.Errorf("invalid --%s: %w", m.flag, err)
			}
			*m.dst = n
		}
	}
	if f.cpus != "" {
		v, err := strconv.ParseFloat(f.cpus, 64)
		if err != nil || v < 0 {
			return r, fmt.Errorf("invalid --cpus %q", f.cpus)
		}
		r.NanoCPUs = int64(v * 1e9)
	}
	if f.pidsLimit != 0 {
		r.PidsLimit = &f.pidsLimit
	}
	return r, nil
}

// printWarnings shows the daemon's warnings as the docker CLI does.
func printWarnings(warnings []string) {
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "WARNING:", w)
	}
}

func pauseCmd(a *app) *cobra.Command {
	return eachCmd(a, "pause CONTAINER...", "Freeze every process of containers", func(ctx context.Context, c *client.Client, id string) error {
		_, err := c.ContainerPause(ctx, id, client.ContainerPauseOptions{})
		return err
	})
}

func unpauseCmd(a *app) *cobra.Command {
	return eachCmd(a, "unpause CONTAINER...", "Thaw paused containers", func(ctx context.Context, c *client.Client, id string) error {
		_, err := c.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
		return err
	})
}

func updateCmd(a *app) *cobra.Command {
	var f resourceFlags
	var restart string
	var cmd *cobra.Command
	cmd = eachCmd(a, "update [OPTIONS] CONTAINER...", "Change containers' resource limits or restart policy", func(ctx context.Context, c *client.Client, id string) error {
		r, err := f.resources()
		if err != nil {
			return err
		}
		opts := client.ContainerUpdateOptions{Resources: &r}
		if cmd.Flags().Changed("restart") {
			rp, err := parseRestart(restart)
			if err != nil {
				return err
			}
			opts.RestartPolicy = &rp
		}
		res, err := c.ContainerUpdate(ctx, id, opts)
		if err == nil {
			printWarnings(res.Warnings)
		}
		return err
	})
	f.register(cmd.Flags())
	cmd.Flags().StringVar(&restart, "restart", "", "restart policy: no, always, unless-stopped, on-failure[:N]")
	return cmd
}

// statsRow is what lodge stats shows of one container.
type statsRow struct {
	id, name      string
	cpu           float64
	mem, memLimit uint64
	pids          uint64
}

// rowOf computes a row as the docker CLI does: CPU time against the
// machine's over the sample's interval, memory without the page cache.
func rowOf(id string, st container.StatsResponse) statsRow {
	if len(st.ID) >= 12 {
		id = st.ID[:12]
	}
	r := statsRow{id: id, name: strings.TrimPrefix(st.Name, "/"), pids: st.PidsStats.Current, memLimit: st.MemoryStats.Limit}
	cpuDelta := float64(st.CPUStats.CPUUsage.TotalUsage) - float64(st.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(st.CPUStats.SystemUsage) - float64(st.PreCPUStats.SystemUsage)
	if st.PreCPUStats.SystemUsage != 0 && sysDelta > 0 && cpuDelta > 0 {
		r.cpu = cpuDelta / sysDelta * float64(st.CPUStats.OnlineCPUs) * 100
	}
	r.mem = st.MemoryStats.Usage
	if cache := st.MemoryStats.Stats["inactive_file"]; cache < r.mem {
		r.mem -= cache
	}
	return r
}

func statsCmd(a *app) *cobra.Command {
	var noStream bool
	cmd := &cobra.Command{
		Use: "stats [OPTIONS] [CONTAINER...]", Short: "Show containers' CPU, memory and process counts (all running ones by default)",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ids := args
			if len(ids) == 0 {
				list, err := c.ContainerList(ctx, client.ContainerListOptions{})
				if err != nil {
					return a.explain(err)
				}
				for _, s := range list.Items {
					ids = append(ids, s.ID[:12])
				}
			}
			rows := &statsTable{rows: map[string]statsRow{}}
			var wg sync.WaitGroup
			errs := make(chan error, len(ids))
			for _, id := range ids {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := rows.follow(ctx, c, id, !noStream); err != nil {
						errs <- fmt.Errorf("%s: %w", id, a.explain(err))
					}
				}()
			}
			if noStream {
				wg.Wait()
				close(errs)
				rows.print(a.out, false)
				for err := range errs {
					return err
				}
				return nil
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			clear := term.IsTerminal(int(os.Stdout.Fd()))
			for {
				select {
				case <-done:
					rows.print(a.out, clear)
					return nil
				case err := <-errs:
					return err
				case <-time.After(time.Second):
					rows.print(a.out, clear)
				}
			}
		},
	}
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "print one sample and exit")
	return cmd
}

// statsTable holds the latest row of each container; safe for concurrent use.
type statsTable struct {
	mu   sync.Mutex
	rows map[string]statsRow
}

// follow reads a container's samples into the table: one (taken over a
// second, for a CPU figure), or a stream until it ends.
func (t *statsTable) follow(ctx context.Context, c *client.Client, id string, stream bool) error {
	res, err := c.ContainerStats(ctx, id, client.ContainerStatsOptions{Stream: stream, IncludePreviousSample: true})
	if err != nil {
		return err
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var st container.StatsResponse
		if err := dec.Decode(&st); err != nil {
			if err == io.EOF || ctx.Err() != nil {
				return nil
			}
			return err
		}
		t.mu.Lock()
		t.rows[id] = rowOf(id, st)
		t.mu.Unlock()
	}
}

func (t *statsTable) print(out io.Writer, clear bool) {
	t.mu.Lock()
	rows := make([]statsRow, 0, len(t.rows))
	for _, r := range t.rows {
		rows = append(rows, r)
	}
	t.mu.Unlock()
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	if clear {
		fmt.Fprint(out, "\033[2J\033[H")
	}
	w := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(w, "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tPIDS")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%.2f%%\t%s / %s\t%d\n", r.id, r.name, r.cpu,
			units.BytesSize(float64(r.mem)), units.BytesSize(float64(r.memLimit)), r.pids)
	}
	w.Flush()
}

package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/cli/opts"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/pflag"
)

// moreRunFlags are the rest of docker run's flags that lodged serves,
// parsed with the docker CLI's own option types where it has them, so
// that a value docker accepts means the same to lodge. What lodged cannot
// do (a cgroup parent, a log driver other than json-file) it refuses at
// create, naming the flag.
type moreRunFlags struct {
	mounts      opts.MountOpt
	ulimits     *opts.UlimitOpt
	sysctls     *opts.MapOpts
	annotations *opts.MapOpts
	shmSize     opts.MemBytes
	readBps     opts.ThrottledeviceOpt
	writeBps    opts.ThrottledeviceOpt
	readIOps    opts.ThrottledeviceOpt
	writeIOps   opts.ThrottledeviceOpt

	volumesFrom, devices, groupAdd, dnsOptions, labelFiles, links, logOpts []string

	healthCmd                                                             string
	healthInterval, healthTimeout, healthStartPeriod, healthStartInterval time.Duration
	healthRetries                                                         int
	noHealthcheck                                                         bool

	logDriver, stopSignal, domainname, platform, pull, cidfile string
	ipc, pid, uts, cgroupns, cgroupParent                      string
	stopTimeout, oomScoreAdj                                   int
	memorySwappiness                                           int64
	oomKillDisable, quiet                                      bool

	// What the CLI does while it runs the container.
	attach     []string
	detachKeys string
	sigProxy   bool
}

func (f *moreRunFlags) register(fl *pflag.FlagSet, run bool) {
	f.ulimits = opts.NewUlimitOpt(nil)
	f.sysctls = opts.NewMapOpts(nil, opts.ValidateSysctl)
	f.annotations = opts.NewMapOpts(nil, nil)
	fl.Var(&f.mounts, "mount", "Attach a filesystem mount to the container (type=bind|volume|tmpfs,source=,target=,readonly)")
	fl.Var(f.ulimits, "ulimit", "Ulimit options (e.g. nofile=1024:2048)")
	fl.Var(f.sysctls, "sysctl", "Sysctl options (namespaced ones: net.*, kernel.msg*, ...)")
	fl.Var(f.annotations, "annotation", "Add an annotation to the container (passed through to the OCI runtime)")
	fl.Var(&f.shmSize, "shm-size", "Size of /dev/shm")
	f.readBps, f.writeBps = opts.NewThrottledeviceOpt(opts.ValidateThrottleBpsDevice), opts.NewThrottledeviceOpt(opts.ValidateThrottleBpsDevice)
	f.readIOps, f.writeIOps = opts.NewThrottledeviceOpt(opts.ValidateThrottleIOpsDevice), opts.NewThrottledeviceOpt(opts.ValidateThrottleIOpsDevice)
	fl.Var(&f.readBps, "device-read-bps", "Limit read rate (bytes per second) from a device")
	fl.Var(&f.writeBps, "device-write-bps", "Limit write rate (bytes per second) to a device")
	fl.Var(&f.readIOps, "device-read-iops", "Limit read rate (IO per second) from a device")
	fl.Var(&f.writeIOps, "device-write-iops", "Limit write rate (IO per second) to a device")
	fl.StringArrayVarP(&f.attach, "attach", "a", nil, "Attach to STDIN, STDOUT or STDERR")
	fl.StringVar(&f.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	if run {
		fl.BoolVar(&f.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	}
	fl.StringArrayVar(&f.volumesFrom, "volumes-from", nil, "Mount volumes from the specified container(s) (NAME[:ro|rw])")
	fl.StringArrayVar(&f.devices, "device", nil, "Add a host device to the container (HOST[:CONTAINER[:PERMISSIONS]])")
	fl.StringArrayVar(&f.groupAdd, "group-add", nil, "Add additional groups to join")
	fl.StringArrayVar(&f.dnsOptions, "dns-option", nil, "Set DNS options")
	fl.StringArrayVar(&f.labelFiles, "label-file", nil, "Read in a line delimited file of labels")
	fl.StringArrayVar(&f.links, "link", nil, "Add link to another container (NAME[:ALIAS])")
	fl.StringArrayVar(&f.logOpts, "log-opt", nil, "Log driver options (max-size=, max-file=)")
	fl.StringVar(&f.healthCmd, "health-cmd", "", "Command to run to check health")
	fl.DurationVar(&f.healthInterval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 0s)")
	fl.DurationVar(&f.healthTimeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	fl.DurationVar(&f.healthStartPeriod, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	fl.DurationVar(&f.healthStartInterval, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 0s)")
	fl.IntVar(&f.healthRetries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	fl.BoolVar(&f.noHealthcheck, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")
	fl.StringVar(&f.logDriver, "log-driver", "", "Logging driver for the container (json-file)")
	fl.StringVar(&f.stopSignal, "stop-signal", "", "Signal to stop the container")
	fl.IntVar(&f.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fl.StringVar(&f.domainname, "domainname", "", "Container NIS domain name")
	fl.StringVar(&f.platform, "platform", "", "Set platform if server is multi-platform capable")
	fl.StringVar(&f.pull, "pull", "missing", `Pull image before running ("always", "missing", "never")`)
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "Suppress the pull output")
	fl.StringVar(&f.cidfile, "cidfile", "", "Write the container ID to the file")
	fl.StringVar(&f.ipc, "ipc", "", "IPC mode to use")
	fl.StringVar(&f.pid, "pid", "", "PID namespace to use")
	fl.StringVar(&f.uts, "uts", "", "UTS namespace to use")
	fl.StringVar(&f.cgroupns, "cgroupns", "", `Cgroup namespace to use (host|private)`)
	fl.StringVar(&f.cgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container (lodge places containers in its own)")
	fl.IntVar(&f.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	fl.Int64Var(&f.memorySwappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	fl.BoolVar(&f.oomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
}

// apply adds the flags to the create request.
func (f *moreRunFlags) apply(fl *pflag.FlagSet, cfg *container.Config, hc *container.HostConfig) error {
	hc.Mounts = f.mounts.Value()
	hc.Ulimits = f.ulimits.GetList()
	if m := f.sysctls.GetAll(); len(m) > 0 {
		hc.Sysctls = m
	}
	if m := f.annotations.GetAll(); len(m) > 0 {
		hc.Annotations = m
	}
	hc.ShmSize = f.shmSize.Value()
	hc.BlkioDeviceReadBps, hc.BlkioDeviceWriteBps = f.readBps.GetList(), f.writeBps.GetList()
	hc.BlkioDeviceReadIOps, hc.BlkioDeviceWriteIOps = f.readIOps.GetList(), f.writeIOps.GetList()
	if len(f.attach) > 0 {
		cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr = false, false, false
		for _, s := range f.attach {
			switch strings.ToLower(s) {
			case "stdin":
				cfg.AttachStdin = true
			case "stdout":
				cfg.AttachStdout = true
			case "stderr":
				cfg.AttachStderr = true
			default:
				return fmt.Errorf("invalid argument %q for --attach: STDIN, STDOUT or STDERR", s)
			}
		}
	}
	hc.VolumesFrom, hc.GroupAdd, hc.DNSOptions, hc.Links = f.volumesFrom, f.groupAdd, f.dnsOptions, f.links
	for _, d := range f.devices {
		dm, err := parseDevice(d)
		if err != nil {
			return err
		}
		hc.Devices = append(hc.Devices, dm)
	}
	for _, path := range f.labelFiles {
		lines, err := readEnvFile(path) // KEY=VALUE lines, # comments: the same format
		if err != nil {
			return fmt.Errorf("--label-file: %w", err)
		}
		for _, l := range lines {
			k, v, _ := strings.Cut(l, "=")
			if _, set := cfg.Labels[k]; !set { // --label wins, as in docker
				cfg.Labels[k] = v
			}
		}
	}
	if f.noHealthcheck {
		if f.healthCmd != "" || f.healthInterval != 0 || f.healthTimeout != 0 || f.healthStartPeriod != 0 || f.healthStartInterval != 0 || f.healthRetries != 0 {
			return fmt.Errorf("--no-healthcheck conflicts with --health-* options")
		}
		cfg.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
	} else if f.healthCmd != "" || f.healthInterval != 0 || f.healthTimeout != 0 || f.healthStartPeriod != 0 || f.healthStartInterval != 0 || f.healthRetries != 0 {
		hcfg := &container.HealthConfig{Interval: f.healthInterval, Timeout: f.healthTimeout, StartPeriod: f.healthStartPeriod, StartInterval: f.healthStartInterval, Retries: f.healthRetries}
		if f.healthCmd != "" {
			hcfg.Test = []string{"CMD-SHELL", f.healthCmd}
		}
		if f.healthRetries < 0 {
			return fmt.Errorf("--health-retries cannot be negative")
		}
		cfg.Healthcheck = hcfg
	}
	if f.logDriver != "" || len(f.logOpts) > 0 {
		hc.LogConfig = container.LogConfig{Type: f.logDriver, Config: map[string]string{}}
		for _, o := range f.logOpts {
			k, v, ok := strings.Cut(o, "=")
			if !ok {
				return fmt.Errorf("invalid --log-opt %q: want key=value", o)
			}
			hc.LogConfig.Config[k] = v
		}
	}
	cfg.StopSignal, cfg.Domainname = f.stopSignal, f.domainname
	if fl.Changed("stop-timeout") {
		cfg.StopTimeout = &f.stopTimeout
	}
	hc.IpcMode, hc.PidMode, hc.UTSMode = container.IpcMode(f.ipc), container.PidMode(f.pid), container.UTSMode(f.uts)
	hc.CgroupnsMode, hc.CgroupParent = container.CgroupnsMode(f.cgroupns), f.cgroupParent
	hc.OomScoreAdj = f.oomScoreAdj
	if fl.Changed("memory-swappiness") {
		hc.MemorySwappiness = &f.memorySwappiness
	}
	if f.oomKillDisable {
		hc.OomKillDisable = &f.oomKillDisable
	}
	switch f.pull {
	case "missing", "always", "never":
	default:
		return fmt.Errorf(`invalid --pull %q: "always", "missing" or "never"`, f.pull)
	}
	return nil
}

// parseDevice reads --device HOST[:CONTAINER[:PERMISSIONS]].
func parseDevice(s string) (container.DeviceMapping, error) {
	parts := strings.Split(s, ":")
	dm := container.DeviceMapping{PathOnHost: parts[0], PathInContainer: parts[0], CgroupPermissions: "rwm"}
	switch len(parts) {
	case 3:
		dm.CgroupPermissions = parts[2]
		fallthrough
	case 2:
		if isPerms(parts[1]) && len(parts) == 2 {
			dm.CgroupPermissions = parts[1]
		} else {
			dm.PathInContainer = parts[1]
		}
	case 1:
	default:
		return dm, fmt.Errorf("invalid --device %q: HOST[:CONTAINER[:PERMISSIONS]]", s)
	}
	if !strings.HasPrefix(dm.PathOnHost, "/") || !strings.HasPrefix(dm.PathInContainer, "/") || !isPerms(dm.CgroupPermissions) {
		return dm, fmt.Errorf("invalid --device %q: absolute paths and permissions of r, w and m", s)
	}
	return dm, nil
}

func isPerms(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c != 'r' && c != 'w' && c != 'm' {
			return false
		}
	}
	return true
}

// createPulling creates the container, pulling its image first as --pull
// says: always, or when it is missing (docker run's default), or never.
func (f *moreRunFlags) createPulling(ctx context.Context, a *app, c *client.Client, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	image := o.Config.Image
	if f.pull == "always" {
		if err := a.pullForRun(ctx, c, image, f.platform, f.quiet); err != nil {
			return client.ContainerCreateResult{}, err
		}
	}
	res, err := c.ContainerCreate(ctx, o)
	if err != nil && f.pull == "missing" && cerrdefs.IsNotFound(err) && strings.Contains(err.Error(), "No such image") {
		fmt.Fprintf(os.Stderr, "Unable to find image '%s' locally\n", image)
		if err := a.pullForRun(ctx, c, image, f.platform, f.quiet); err != nil {
			return client.ContainerCreateResult{}, err
		}
		res, err = c.ContainerCreate(ctx, o)
	}
	if err == nil && f.cidfile != "" {
		if werr := os.WriteFile(f.cidfile, []byte(res.ID), 0o644); werr != nil {
			return res, fmt.Errorf("--cidfile: %w", werr)
		}
	}
	return res, err
}

// pullForRun pulls with the progress display on stderr, as docker run
// does (stdout is the container's).
func (a *app) pullForRun(ctx context.Context, c *client.Client, ref, platform string, quiet bool) error {
	o := client.ImagePullOptions{}
	if platform != "" {
		p, err := parsePlatform(platform)
		if err != nil {
			return err
		}
		o.Platforms = append(o.Platforms, p)
	}
	r, err := c.ImagePull(ctx, ref, o)
	if err != nil {
		return a.explain(err)
	}
	defer r.Close()
	if quiet {
		return drainStream(r)
	}
	return printStreamTo(r, os.Stderr)
}

// attachOptions say how lodge run follows the container it started.
type attachOptions struct {
	rm         bool
	detachKeys string
	sigProxy   bool // forward the signals lodge gets to the container
}

// proxySignals forwards the signals a user sends lodge run (Ctrl-C, kill)
// to the container, as docker run --sig-proxy does, until stop.
func proxySignals(ctx context.Context, c *client.Client, id string) (stop func()) {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				_, _ = c.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: strconv.Itoa(int(s.(syscall.Signal)))})
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

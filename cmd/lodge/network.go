package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// netFlags are run/create's network options.
type netFlags struct {
	publish, expose, addHost, dns, dnsSearch, aliases []string
	publishAll                                        bool
	network, ip, ip6, mac                             string
}

func (f *netFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.publish, "publish", "p", nil, "publish a port: [ip:][hostPort:]containerPort[/udp], ranges as 8000-8001:80-81")
	fl.BoolVarP(&f.publishAll, "publish-all", "P", false, "publish every exposed port on a random host port")
	fl.StringArrayVar(&f.expose, "expose", nil, "expose a port or range")
	fl.StringVar(&f.network, "network", "", "bridge (default), none, host, container:NAME or a network's name")
	fl.StringArrayVar(&f.aliases, "network-alias", nil, "another name on the network")
	fl.StringArrayVar(&f.addHost, "add-host", nil, "add host:ip to /etc/hosts")
	fl.StringArrayVar(&f.dns, "dns", nil, "name server")
	fl.StringArrayVar(&f.dnsSearch, "dns-search", nil, "DNS search domain")
	fl.StringVar(&f.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	fl.StringVar(&f.ip6, "ip6", "", "IPv6 address (e.g., 2001:db8::33)")
	fl.StringVar(&f.mac, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
}

// apply puts the network options into the create request.
func (f *netFlags) apply(cfg *container.Config, hc *container.HostConfig) (*network.NetworkingConfig, error) {
	hc.NetworkMode = container.NetworkMode(f.network)
	hc.PublishAllPorts = f.publishAll
	hc.ExtraHosts = f.addHost
	hc.DNSSearch = f.dnsSearch
	for _, d := range f.dns {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, fmt.Errorf("invalid --dns %q", d)
		}
		hc.DNS = append(hc.DNS, a)
	}
	cfg.ExposedPorts = network.PortSet{}
	for _, e := range f.expose {
		pr, err := network.ParsePortRange(withProto(e))
		if err != nil {
			return nil, fmt.Errorf("invalid --expose %q: %w", e, err)
		}
		for p := range pr.All() {
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	hc.PortBindings = network.PortMap{}
	for _, p := range f.publish {
		if err := parsePublish(p, cfg.ExposedPorts, hc.PortBindings); err != nil {
			return nil, err
		}
	}
	if len(f.aliases) == 0 && f.ip == "" && f.ip6 == "" && f.mac == "" {
		return nil, nil
	}
	name := f.network
	if name == "" {
		name = network.NetworkBridge
	}
	es := &network.EndpointSettings{Aliases: f.aliases}
	if f.ip != "" || f.ip6 != "" {
		es.IPAMConfig = &network.EndpointIPAMConfig{}
		for _, a := range []struct {
			flag, val string
			to        *netip.Addr
		}{{"--ip", f.ip, &es.IPAMConfig.IPv4Address}, {"--ip6", f.ip6, &es.IPAMConfig.IPv6Address}} {
			if a.val == "" {
				continue
			}
			ip, err := netip.ParseAddr(a.val)
			if err != nil || (a.flag == "--ip") != ip.Is4() {
				return nil, fmt.Errorf("invalid %s %q", a.flag, a.val)
			}
			*a.to = ip
		}
	}
	if f.mac != "" {
		mac, err := net.ParseMAC(f.mac)
		if err != nil {
			return nil, fmt.Errorf("invalid --mac-address %q", f.mac)
		}
		es.MacAddress = network.HardwareAddr(mac)
	}
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{name: es}}, nil
}

func withProto(s string) string {
	if !strings.Contains(s, "/") {
		return s + "/tcp"
	}
	return s
}

// parsePublish reads one -p: [ip:][hostPort[-end]:]containerPort[-end][/proto].
func parsePublish(spec string, exposed network.PortSet, bindings network.PortMap) error {
	rest, proto, hasProto := strings.Cut(spec, "/")
	switch {
	case !hasProto:
		proto = "tcp"
	case proto != "tcp" && proto != "udp":
		return fmt.Errorf("invalid protocol in port specification %q: tcp or udp", spec)
	}
	parts := strings.Split(rest, ":")
	var ip, host, ctr string
	switch len(parts) {
	case 1:
		ctr = parts[0]
	case 2:
		host, ctr = parts[0], parts[1]
	case 3:
		ip, host, ctr = parts[0], parts[1], parts[2]
	default:
		return fmt.Errorf("invalid port specification %q", spec)
	}
	pr, err := network.ParsePortRange(ctr + "/" + proto)
	if err != nil {
		return fmt.Errorf("invalid port specification %q: %w", spec, err)
	}
	if pr.Start() == 0 {
		return fmt.Errorf("invalid port specification %q: port 0", spec)
	}
	var hostIP netip.Addr
	if ip != "" {
		if hostIP, err = netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("invalid IP in port specification %q", spec)
		}
	}
	hostLo, hostHi := 0, 0
	if host != "" {
		a, b, isRange := strings.Cut(host, "-")
		if hostLo, err = strconv.Atoi(a); err != nil {
			return fmt.Errorf("invalid host port in %q", spec)
		}
		hostHi = hostLo
		if isRange {
			if hostHi, err = strconv.Atoi(b); err != nil || hostHi < hostLo {
				return fmt.Errorf("invalid host port range in %q", spec)
			}
		}
	}
	n := int(pr.End() - pr.Start())
	if host != "" && hostHi-hostLo != n && n != 0 {
		return fmt.Errorf("invalid ranges in %q: host and container ranges differ in size", spec)
	}
	i := 0
	for p := range pr.All() {
		exposed[p] = struct{}{}
		b := network.PortBinding{HostIP: hostIP}
		switch {
		case host == "":
		case n == 0 && hostHi != hostLo:
			b.HostPort = host // any one of the range
		default:
			b.HostPort = strconv.Itoa(hostLo + i)
		}
		bindings[p] = append(bindings[p], b)
		i++
	}
	return nil
}

func portCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use: "port CONTAINER [PRIVATE_PORT[/PROTO]]", Short: "List a container's published ports", Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return a.explain(err)
			}
			var lines []string
			if res.Container.NetworkSettings != nil {
				for p, bs := range res.Container.NetworkSettings.Ports {
					if len(args) == 2 && withProto(args[1]) != p.String() {
						continue
					}
					for _, b := range bs {
						lines = append(lines, fmt.Sprintf("%s -> %s", p, netip.AddrPortFrom(b.HostIP, mustPort(b.HostPort))))
					}
				}
			}
			if len(args) == 2 && len(lines) == 0 {
				return fmt.Errorf("no public port '%s' published for %s", args[1], args[0])
			}
			sort.Strings(lines)
			for _, l := range lines {
				fmt.Fprintln(a.out, l)
			}
			return nil
		},
	}
}

func mustPort(s string) uint16 {
	n, _ := strconv.Atoi(s)
	return uint16(n)
}

func networkCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage networks"}
	var subnet, gateway, driver string
	var internal bool
	var labels []string
	create := &cobra.Command{
		Use: "create [OPTIONS] NETWORK", Short: "Create a bridge network", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := client.NetworkCreateOptions{Driver: driver, Internal: internal, Labels: map[string]string{}}
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				opts.Labels[k] = v
			}
			if subnet != "" {
				p, err := netip.ParsePrefix(subnet)
				if err != nil {
					return fmt.Errorf("invalid --subnet %q", subnet)
				}
				cfg := network.IPAMConfig{Subnet: p}
				if gateway != "" {
					if cfg.Gateway, err = netip.ParseAddr(gateway); err != nil {
						return fmt.Errorf("invalid --gateway %q", gateway)
					}
				}
				opts.IPAM = &network.IPAM{Driver: "default", Config: []network.IPAMConfig{cfg}}
			}
			return a.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				res, err := c.NetworkCreate(ctx, args[0], opts)
				if err == nil {
					fmt.Fprintln(a.out, res.ID)
				}
				return err
			})
		},
	}
	create.Flags().StringVar(&subnet, "subnet", "", "subnet in CIDR form")
	create.Flags().StringVar(&gateway, "gateway", "", "gateway address in the subnet")
	create.Flags().StringVarP(&driver, "driver", "d", "bridge", "network driver (bridge)")
	create.Flags().BoolVar(&internal, "internal", false, "no outbound traffic")
	create.Flags().StringArrayVar(&labels, "label", nil, "set a label key=value")

	var quiet, noTrunc bool
	var lsFilters []string
	var lsFormat string
	ls := &cobra.Command{
		Use: "ls [OPTIONS]", Aliases: []string{"list"}, Short: "List networks", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				res, err := c.NetworkList(ctx, client.NetworkListOptions{Filters: parseFilters(lsFilters)})
				if err != nil {
					return err
				}
				return writeNetworks(a.out, res.Items, listFormat(lsFormat, quiet, func(_, _, _, networks string) string { return networks }), quiet, noTrunc)
			})
		},
	}
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	ls.Flags().BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	ls.Flags().StringArrayVarP(&lsFilters, "filter", "f", nil, "Provide filter values (e.g. \"driver=bridge\"; name=, id=, label=, type=, dangling=)")
	ls.Flags().StringVar(&lsFormat, "format", "", formatHelp)

	var format string
	inspect := &cobra.Command{
		Use: "inspect NETWORK...", Short: "Show networks' details", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return a.inspect(cmd.Context(), c, args, format, func(ctx context.Context, name string) (json.RawMessage, error) {
				res, err := c.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
				return res.Raw, err
			})
		},
	}
	inspect.Flags().StringVarP(&format, "format", "f", "", "Go template for each network")

	rm := &cobra.Command{
		Use: "rm NETWORK...", Aliases: []string{"remove"}, Short: "Remove networks", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				for _, n := range args {
					if _, err := c.NetworkRemove(ctx, n, client.NetworkRemoveOptions{}); err != nil {
						return err
					}
					fmt.Fprintln(a.out, n)
				}
				return nil
			})
		},
	}
	var aliases []string
	connect := &cobra.Command{
		Use: "connect NETWORK CONTAINER", Short: "Connect a container to a network", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				_, err := c.NetworkConnect(ctx, args[0], client.NetworkConnectOptions{Container: args[1], EndpointConfig: &network.EndpointSettings{Aliases: aliases}})
				return err
			})
		},
	}
	connect.Flags().StringArrayVar(&aliases, "alias", nil, "another name on the network")
	var force bool
	disconnect := &cobra.Command{
		Use: "disconnect NETWORK CONTAINER", Short: "Disconnect a container from a network", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				_, err := c.NetworkDisconnect(ctx, args[0], client.NetworkDisconnectOptions{Container: args[1], Force: force})
				return err
			})
		},
	}
	disconnect.Flags().BoolVarP(&force, "force", "f", false, "force")
	var yes bool
	prune := &cobra.Command{
		Use: "prune", Short: "Remove unused networks", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd.Context(), func(ctx context.Context, c *client.Client) error {
				res, err := c.NetworkPrune(ctx, client.NetworkPruneOptions{})
				if err != nil {
					return err
				}
				if len(res.Report.NetworksDeleted) > 0 {
					fmt.Fprintln(a.out, "Deleted Networks:")
				}
				for _, n := range res.Report.NetworksDeleted {
					fmt.Fprintln(a.out, n)
				}
				return nil
			})
		},
	}
	prune.Flags().BoolVarP(&yes, "force", "f", false, "do not ask (lodge never asks)")
	cmd.AddCommand(create, ls, inspect, rm, connect, disconnect, prune)
	return cmd
}

// withClient runs fn with a client, explaining connection errors.
func (a *app) withClient(ctx context.Context, fn func(context.Context, *client.Client) error) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	return a.explain(fn(ctx, c))
}

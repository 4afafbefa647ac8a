package cri

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lodge-containers/lodge/daemon"
	"github.com/lodge-containers/lodge/errdefs"
)

// Containers is lodge's container service (daemon.ContainerAPI fits): a
// sandbox and each of its containers are lodge containers.
type Containers interface {
	Create(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (container.CreateResponse, error)
	Start(ctx context.Context, ref string) error
	Stop(ctx context.Context, ref string, timeout *int, signal string) error
	Remove(ctx context.Context, ref string, opts daemon.RemoveOptions) error
	Inspect(ref string) (container.InspectResponse, error)
	List(opts daemon.ListOptions) ([]container.Summary, error)
}

// Networks finds or makes the pods' network (daemon.NetworkAPI fits).
type Networks interface {
	Inspect(ctx context.Context, ref string) (network.Inspect, error)
	Create(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error)
}

// PodNetwork is the lodge network pods get their addresses on.
const PodNetwork = "k8s-pods"

// DefaultPodSubnet is the pod network's subnet unless lodged is told
// otherwise: clear of the pools lodge's own networks come from
// (172.17-31/16, 192.168/16).
const DefaultPodSubnet = "10.88.0.0/16"

// podNetwork makes the pods' network if it is missing.
func (s *Server) podNetwork(ctx context.Context) error {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	if _, err := s.b.Networks.Inspect(ctx, PodNetwork); err == nil || !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	subnet := s.b.PodSubnet
	if subnet == "" {
		subnet = DefaultPodSubnet
	}
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return errdefs.InvalidArgumentf("pod subnet %q: %v", subnet, err)
	}
	_, err = s.b.Networks.Create(ctx, network.CreateRequest{
		Name: PodNetwork, Driver: "bridge",
		IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: p.Masked()}}},
		Labels: map[string]string{"io.kubernetes.cri.network": "pods"},
	})
	if errors.Is(err, errdefs.ErrConflict) {
		return nil // made meanwhile, by a docker user
	}
	return err
}

// RunPodSandbox starts a pause container holding the pod's namespaces, on
// the pod network, with the pod's hostname, DNS and host ports.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	cfg := req.GetConfig()
	md := cfg.GetMetadata()
	if md.GetName() == "" || md.GetNamespace() == "" || md.GetUid() == "" {
		return nil, errdefs.InvalidArgumentf("a sandbox's metadata needs a name, a namespace and a uid")
	}
	if h := req.GetRuntimeHandler(); h != "" {
		return nil, unimplemented("runtime handler " + strconv.Quote(h))
	}
	if err := s.ensurePause(ctx); err != nil {
		return nil, err
	}
	s.ignoreCgroupParent(cfg.GetLinux().GetCgroupParent())
	ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	hc := &container.HostConfig{IpcMode: "shareable"}
	if ns.GetNetwork() == runtimeapi.NamespaceMode_NODE {
		hc.NetworkMode = "host"
	} else {
		if err := s.podNetwork(ctx); err != nil {
			return nil, fmt.Errorf("pod network: %w", err)
		}
		hc.NetworkMode = PodNetwork
	}
	if ns.GetIpc() == runtimeapi.NamespaceMode_NODE {
		hc.IpcMode = "host"
	}
	if ns.GetPid() == runtimeapi.NamespaceMode_NODE {
		hc.PidMode = "host"
	}
	// The pod's sysctls are its namespaces' (net, ipc), which the sandbox
	// holds and its containers join.
	hc.Sysctls = cfg.GetLinux().GetSysctls()
	if dns := cfg.GetDnsConfig(); dns != nil {
		for _, a := range dns.Servers {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return nil, errdefs.InvalidArgumentf("DNS server %q: %v", a, err)
			}
			hc.DNS = append(hc.DNS, ip)
		}
		hc.DNSSearch, hc.DNSOptions = dns.Searches, dns.Options
	}
	c := &container.Config{
		Image:    pauseImage,
		Hostname: cfg.GetHostname(),
	}
	if hc.NetworkMode == "host" {
		// A pod on the node's network has the node's name, as
		// containerd's and CRI-O's: lodged's UTS namespace, the host's.
		c.Hostname, hc.UTSMode = "", "host"
	}
	if len(cfg.GetPortMappings()) > 0 {
		c.ExposedPorts, hc.PortBindings = network.PortSet{}, network.PortMap{}
		for _, pm := range cfg.GetPortMappings() {
			proto := network.TCP
			switch pm.Protocol {
			case runtimeapi.Protocol_UDP:
				proto = network.UDP
			case runtimeapi.Protocol_SCTP:
				proto = network.SCTP
			}
			p, ok := network.PortFrom(uint16(pm.ContainerPort), proto)
			if !ok || pm.ContainerPort <= 0 || pm.ContainerPort > 65535 {
				return nil, errdefs.InvalidArgumentf("container port %d", pm.ContainerPort)
			}
			c.ExposedPorts[p] = struct{}{}
			if pm.HostPort <= 0 {
				continue // exposed only, as the kubelet means without a hostPort
			}
			b := network.PortBinding{HostPort: strconv.Itoa(int(pm.HostPort))}
			if pm.HostIp != "" {
				ip, err := netip.ParseAddr(pm.HostIp)
				if err != nil {
					return nil, errdefs.InvalidArgumentf("host IP %q: %v", pm.HostIp, err)
				}
				b.HostIP = ip
			}
			hc.PortBindings[p] = append(hc.PortBindings[p], b)
		}
	}
	meta := map[string]string{
		labelType: typeSandbox, labelPodName: md.Name, labelPodNamespace: md.Namespace, labelPodUID: md.Uid,
		labelAttempt: strconv.FormatUint(uint64(md.Attempt), 10),
	}
	if ns.GetPid() == runtimeapi.NamespaceMode_POD {
		meta[labelPidPod] = "true"
	}
	// A privileged pod may hold privileged containers; its pause process
	// needs no privilege of its own.
	if cfg.GetLinux().GetSecurityContext().GetPrivileged() {
		meta[labelPrivileged] = "true"
	}
	var err error
	if c.Labels, err = criLabels(cfg.GetLabels(), cfg.GetAnnotations(), meta); err != nil {
		return nil, err
	}
	created, err := s.b.Containers.Create(ctx, sandboxName(md.Name, md.Namespace, md.Uid, md.Attempt), c, hc, nil)
	if err != nil {
		return nil, err
	}
	if err := s.b.Containers.Start(ctx, created.ID); err != nil {
		// A sandbox that never ran is of no use to the kubelet, which
		// makes a new one: leave nothing behind.
		if rmErr := s.b.Containers.Remove(context.WithoutCancel(ctx), created.ID, daemon.RemoveOptions{Force: true}); rmErr != nil {
			s.log.Warn("removing a sandbox that did not start", "id", created.ID, "err", rmErr)
		}
		return nil, err
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: created.ID}, nil
}

// sandbox inspects a sandbox by ID (or a unique prefix), refusing a
// container that is not one.
func (s *Server) sandbox(id string) (container.InspectResponse, error) {
	if id == "" {
		return container.InspectResponse{}, errdefs.InvalidArgumentf("no pod sandbox ID")
	}
	c, err := s.b.Containers.Inspect(id)
	if err != nil {
		return c, err
	}
	if c.Config == nil || c.Config.Labels[labelType] != typeSandbox {
		return c, errdefs.NotFoundf("pod sandbox %s not found", id)
	}
	return c, nil
}

// podContainers are the containers of sandbox id.
func (s *Server) podContainers(id string) ([]container.Summary, error) {
	return s.b.Containers.List(daemon.ListOptions{All: true, Filters: map[string][]string{
		"label": {labelType + "=" + typeContainer, labelSandboxID + "=" + id},
	}})
}

// StopPodSandbox stops the pod's containers, then its sandbox. A sandbox
// already gone is no error.
func (s *Server) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	sb, err := s.sandbox(req.GetPodSandboxId())
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	ctrs, err := s.podContainers(sb.ID)
	if err != nil {
		return nil, err
	}
	grace := 10
	for _, c := range ctrs {
		if err := s.stop(ctx, c.ID, grace); err != nil {
			return nil, fmt.Errorf("stopping container %s: %w", c.ID, err)
		}
	}
	if err := s.stop(ctx, sb.ID, grace); err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// stop stops a container; one already stopped or gone is no error (the
// CRI's stops are idempotent).
func (s *Server) stop(ctx context.Context, id string, timeout int) error {
	err := s.b.Containers.Stop(ctx, id, &timeout, "")
	if err == nil || daemon.IsNotModified(err) || errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

// RemovePodSandbox removes the pod's containers and its sandbox, running
// or not. A sandbox already gone is no error.
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	sb, err := s.sandbox(req.GetPodSandboxId())
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	ctrs, err := s.podContainers(sb.ID)
	if err != nil {
		return nil, err
	}
	for _, c := range ctrs {
		if err := s.b.Containers.Remove(ctx, c.ID, daemon.RemoveOptions{Force: true}); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return nil, fmt.Errorf("removing container %s: %w", c.ID, err)
		}
	}
	if err := s.b.Containers.Remove(ctx, sb.ID, daemon.RemoveOptions{Force: true}); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return nil, err
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// PodSandboxStatus reports a sandbox's state, created time and IP.
func (s *Server) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.sandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	l := sb.Config.Labels
	labels, annotations := requestLabels(l)
	st := &runtimeapi.PodSandboxStatus{
		Id:          sb.ID,
		Metadata:    sandboxMetadata(l),
		State:       runtimeapi.PodSandboxState_SANDBOX_NOTREADY,
		CreatedAt:   parseTime(sb.Created),
		Labels:      labels,
		Annotations: annotations,
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: &runtimeapi.NamespaceOption{
			Network: nsMode(string(sb.HostConfig.NetworkMode)), Ipc: nsMode(string(sb.HostConfig.IpcMode)),
			Pid: pidMode(sb),
		}}},
	}
	if sb.State != nil && sb.State.Running {
		st.State = runtimeapi.PodSandboxState_SANDBOX_READY
	}
	if sb.NetworkSettings != nil {
		if ep := sb.NetworkSettings.Networks[PodNetwork]; ep != nil && ep.IPAddress.IsValid() {
			st.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: ep.IPAddress.String()}
		}
	}
	return &runtimeapi.PodSandboxStatusResponse{Status: st}, nil
}

// ignoreCgroupParent says once that the kubelet's pod cgroups (its
// cgroupsPerQOS tree, "/kubepods/..." from the cgroup root) are not used:
// lodged may write only inside the cgroup delegated to it, where it keeps
// each container in containers/<id>, so a parent outside it cannot be
// honoured, as rootless runc under containerd skips a cgroup it may not
// make. "/" (the root, what a kubelet without cgroupsPerQOS sends) asks
// for nothing.
func (s *Server) ignoreCgroupParent(parent string) {
	if parent == "" || parent == "/" {
		return
	}
	s.cgroupParentOnce.Do(func() {
		s.log.Warn("a pod's cgroup parent is ignored: lodged places every container in its own delegated cgroup (run the kubelet with cgroupsPerQOS: false)", "cgroup_parent", parent)
	})
}

func nsMode(m string) runtimeapi.NamespaceMode {
	if m == "host" {
		return runtimeapi.NamespaceMode_NODE
	}
	return runtimeapi.NamespaceMode_POD
}

func pidMode(sb container.InspectResponse) runtimeapi.NamespaceMode {
	switch {
	case sb.HostConfig != nil && sb.HostConfig.PidMode == "host":
		return runtimeapi.NamespaceMode_NODE
	case sb.Config.Labels[labelPidPod] == "true":
		return runtimeapi.NamespaceMode_POD
	}
	return runtimeapi.NamespaceMode_CONTAINER
}

func sandboxMetadata(l map[string]string) *runtimeapi.PodSandboxMetadata {
	return &runtimeapi.PodSandboxMetadata{Name: l[labelPodName], Namespace: l[labelPodNamespace], Uid: l[labelPodUID], Attempt: attemptOf(l)}
}

// parseTime reads Docker's RFC 3339 times as the CRI's nanoseconds; the
// zero time ("0001-01-01...") is 0.
func parseTime(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.IsZero() || t.Year() <= 1 {
		return 0
	}
	return t.UnixNano()
}

// ListPodSandbox lists the sandboxes, filtered by id, state and labels.
func (s *Server) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	sums, err := s.b.Containers.List(daemon.ListOptions{All: true, Filters: map[string][]string{"label": {labelType + "=" + typeSandbox}}})
	if err != nil {
		return nil, err
	}
	f := req.GetFilter()
	resp := &runtimeapi.ListPodSandboxResponse{}
	for _, c := range sums {
		labels, annotations := requestLabels(c.Labels)
		state := runtimeapi.PodSandboxState_SANDBOX_NOTREADY
		if c.State == container.StateRunning {
			state = runtimeapi.PodSandboxState_SANDBOX_READY
		}
		if !hasIDPrefix(c.ID, f.GetId()) || (f.GetState() != nil && f.GetState().State != state) || !matchLabels(labels, f.GetLabelSelector()) {
			continue
		}
		resp.Items = append(resp.Items, &runtimeapi.PodSandbox{
			Id: c.ID, Metadata: sandboxMetadata(c.Labels), State: state, CreatedAt: time.Unix(c.Created, 0).UnixNano(),
			Labels: labels, Annotations: annotations,
		})
	}
	return resp, nil
}

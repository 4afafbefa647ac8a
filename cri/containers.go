package cri

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lodge-containers/lodge/daemon"
	"github.com/lodge-containers/lodge/errdefs"
)

// CreateContainer creates a container in a sandbox's namespaces.
func (s *Server) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	cfg := req.GetConfig()
	md := cfg.GetMetadata()
	if md.GetName() == "" {
		return nil, errdefs.InvalidArgumentf("a container's metadata needs a name")
	}
	if cfg.GetImage().GetImage() == "" {
		return nil, errdefs.InvalidArgumentf("a container needs an image")
	}
	sb, err := s.sandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	sec := cfg.GetLinux().GetSecurityContext()
	if sec.GetPrivileged() && sb.Config.Labels[labelPrivileged] != "true" {
		return nil, errdefs.InvalidArgumentf("a privileged container needs a privileged pod")
	}
	pod := sandboxMetadata(sb.Config.Labels)
	c := &container.Config{
		Image:      cfg.Image.Image,
		Cmd:        cfg.Args,
		WorkingDir: cfg.WorkingDir,
		Tty:        cfg.Tty,
		OpenStdin:  cfg.Stdin,
		StdinOnce:  cfg.StdinOnce,
	}
	// The CRI's command is the image's entrypoint replaced, its args the
	// image's cmd replaced, as in a pod spec.
	if len(cfg.Command) > 0 {
		c.Entrypoint = cfg.Command
	}
	for _, kv := range cfg.Envs {
		c.Env = append(c.Env, kv.Key+"="+string(kv.Value))
	}
	sbRef := "container:" + sb.ID
	// The pod's containers join the sandbox's net, ipc and uts
	// namespaces (the uts one takes the sandbox's hostname with it), or
	// stay in lodged's where the pod has the node's: a namespace the
	// host owns cannot be joined from lodged's user namespace.
	hc := &container.HostConfig{NetworkMode: container.NetworkMode(sbRef), IpcMode: container.IpcMode(sbRef), UTSMode: container.UTSMode(sbRef)}
	if sb.HostConfig.NetworkMode == "host" {
		hc.NetworkMode = "host"
	} else {
		// lodge writes each container's resolv.conf from its own
		// settings: the pod's are copied, so every container of it
		// resolves as the sandbox does.
		hc.DNS, hc.DNSSearch, hc.DNSOptions = sb.HostConfig.DNS, sb.HostConfig.DNSSearch, sb.HostConfig.DNSOptions
	}
	if sb.HostConfig.IpcMode == "host" {
		hc.IpcMode = "host"
	}
	if sb.HostConfig.UTSMode == "host" {
		hc.UTSMode = "host"
	}
	switch sec.GetNamespaceOptions().GetPid() {
	case runtimeapi.NamespaceMode_POD:
		hc.PidMode = container.PidMode(sbRef)
	case runtimeapi.NamespaceMode_NODE:
		hc.PidMode = "host"
	case runtimeapi.NamespaceMode_TARGET:
		return nil, unimplemented("a pid namespace shared with a target container")
	}
	if err := securityContext(sec, c, hc); err != nil {
		return nil, err
	}
	if sec.GetPrivileged() {
		// What a user namespace allows, as docker run --privileged gives
		// it on lodge: every capability in it, no seccomp, /proc
		// unmasked; not the host's devices. The CRI's privileged
		// container ignores the seccomp profile it names.
		hc.Privileged = true
		hc.SecurityOpt = slices.DeleteFunc(hc.SecurityOpt, func(o string) bool { return strings.HasPrefix(o, "seccomp=") })
		hc.MaskedPaths, hc.ReadonlyPaths = nil, nil
	}
	for _, m := range cfg.Mounts {
		mm, err := criMount(m)
		if err != nil {
			return nil, err
		}
		hc.Mounts = append(hc.Mounts, mm)
	}
	if hc.Resources, err = criResources(cfg.GetLinux().GetResources()); err != nil {
		return nil, err
	}
	hc.OomScoreAdj = oomScoreAdj(cfg.GetLinux().GetResources().GetOomScoreAdj())
	if len(cfg.Devices) > 0 {
		return nil, unimplemented("devices in a container")
	}
	meta := map[string]string{
		labelType: typeContainer, labelSandboxID: sb.ID, labelContainerName: md.Name,
		labelPodName: pod.Name, labelPodNamespace: pod.Namespace, labelPodUID: pod.Uid,
		labelAttempt: strconv.FormatUint(uint64(md.Attempt), 10), labelImage: cfg.Image.Image,
	}
	if cfg.LogPath != "" {
		// The CRI's log at the kubelet's path (docker logs reads it
		// too); the path is recorded for ContainerStatus.
		if hc.LogConfig, meta[labelLogPath], err = criLogConfig(req.GetSandboxConfig().GetLogDirectory(), cfg.LogPath); err != nil {
			return nil, err
		}
	}
	if c.Labels, err = criLabels(cfg.Labels, cfg.Annotations, meta); err != nil {
		return nil, err
	}
	created, err := s.b.Containers.Create(ctx, containerName(md.Name, pod.Name, pod.Namespace, pod.Uid, md.Attempt), c, hc, nil)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: created.ID}, nil
}

// securityContext maps what rootless lodge can honour of a container's
// security context; the rest is refused by name.
func securityContext(sec *runtimeapi.LinuxContainerSecurityContext, c *container.Config, hc *container.HostConfig) error {
	user := sec.GetRunAsUsername()
	if u := sec.GetRunAsUser(); u != nil {
		user = strconv.FormatInt(u.Value, 10)
	}
	if g := sec.GetRunAsGroup(); g != nil {
		if user == "" {
			return errdefs.InvalidArgumentf("run-as group %d needs a run-as user", g.Value)
		}
		user += ":" + strconv.FormatInt(g.Value, 10)
	}
	c.User = user
	for _, g := range sec.GetSupplementalGroups() {
		hc.GroupAdd = append(hc.GroupAdd, strconv.FormatInt(g, 10))
	}
	hc.ReadonlyRootfs = sec.GetReadonlyRootfs()
	if caps := sec.GetCapabilities(); caps != nil {
		if len(caps.AddAmbientCapabilities) > 0 {
			return unimplemented("ambient capabilities")
		}
		hc.CapAdd, hc.CapDrop = caps.AddCapabilities, caps.DropCapabilities
	}
	// Said either way: the kubelet's false (allowPrivilegeEscalation)
	// must win over lodged's default, as containerd has no default.
	hc.SecurityOpt = append(hc.SecurityOpt, "no-new-privileges="+strconv.FormatBool(sec.GetNoNewPrivs()))
	p := sec.GetSeccomp()
	if p == nil {
		// No profile is unconfined in the CRI (the kubelet always names
		// one), unless the deprecated path field names another.
		switch path := sec.GetSeccompProfilePath(); {
		case path == "runtime/default" || path == "docker/default":
			p = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
		case strings.HasPrefix(path, "localhost/"):
			p = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: strings.TrimPrefix(path, "localhost/")}
		case path == "" || path == "unconfined":
			p = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
		default:
			return errdefs.InvalidArgumentf("seccomp profile path %q", path)
		}
	}
	switch p.GetProfileType() {
	case runtimeapi.SecurityProfile_RuntimeDefault: // lodge's default is Docker's profile
	case runtimeapi.SecurityProfile_Unconfined:
		hc.SecurityOpt = append(hc.SecurityOpt, "seccomp=unconfined")
	case runtimeapi.SecurityProfile_Localhost:
		// A file on the node, as the kubelet names it; its JSON goes as
		// docker run --security-opt seccomp=FILE sends it.
		path := p.GetLocalhostRef()
		if !filepath.IsAbs(path) {
			return errdefs.InvalidArgumentf("seccomp profile %q: a Localhost profile is an absolute path", path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return errdefs.InvalidArgumentf("seccomp profile: %v", err)
		}
		hc.SecurityOpt = append(hc.SecurityOpt, "seccomp="+string(b))
	}
	// The kubelet sends the paths to mask and to make read-only (its
	// defaults, or none for an unmasked /proc); none keeps lodge's, which
	// are Docker's.
	if len(sec.GetMaskedPaths()) > 0 {
		hc.MaskedPaths = sec.GetMaskedPaths()
	}
	if len(sec.GetReadonlyPaths()) > 0 {
		hc.ReadonlyPaths = sec.GetReadonlyPaths()
	}
	return nil
}

// criMount is a CRI mount as a bind mount.
func criMount(m *runtimeapi.Mount) (mount.Mount, error) {
	if m.Image != nil && m.Image.Image != "" {
		return mount.Mount{}, unimplemented("image volumes") // they have no host path: say what is missing
	}
	if m.HostPath == "" || m.ContainerPath == "" {
		return mount.Mount{}, errdefs.InvalidArgumentf("a mount needs a host path and a container path")
	}
	out := mount.Mount{Type: mount.TypeBind, Source: m.HostPath, Target: m.ContainerPath, ReadOnly: m.Readonly, BindOptions: &mount.BindOptions{}}
	switch m.Propagation {
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		out.BindOptions.Propagation = mount.PropagationRSlave
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		out.BindOptions.Propagation = mount.PropagationRShared
	}
	return out, nil
}

// ctr inspects a CRI container by ID (or a unique prefix).
func (s *Server) ctr(id string) (container.InspectResponse, error) {
	if id == "" {
		return container.InspectResponse{}, errdefs.InvalidArgumentf("no container ID")
	}
	c, err := s.b.Containers.Inspect(id)
	if err != nil {
		return c, err
	}
	if c.Config == nil || c.Config.Labels[labelType] != typeContainer {
		return c, errdefs.NotFoundf("container %s not found", id)
	}
	return c, nil
}

// StartContainer starts a created container.
func (s *Server) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := s.ctr(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if err := s.b.Containers.Start(ctx, c.ID); err != nil {
		return nil, err
	}
	return &runtimeapi.StartContainerResponse{}, nil
}

// StopContainer stops a container with SIGTERM, then SIGKILL after the
// timeout. One already stopped or gone is no error.
func (s *Server) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, err := s.ctr(req.GetContainerId())
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	timeout := int(max(req.GetTimeout(), 0))
	if err := s.stop(ctx, c.ID, timeout); err != nil {
		return nil, err
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// RemoveContainer removes a container, running or not; one already gone
// is no error.
func (s *Server) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	c, err := s.ctr(req.GetContainerId())
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.b.Containers.Remove(ctx, c.ID, daemon.RemoveOptions{Force: true}); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return nil, err
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

func criState(st container.ContainerState) runtimeapi.ContainerState {
	switch st {
	case container.StateCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case container.StateRunning, container.StatePaused, container.StateRestarting:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case container.StateExited, container.StateDead, container.StateRemoving:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

func containerMetadata(l map[string]string) *runtimeapi.ContainerMetadata {
	return &runtimeapi.ContainerMetadata{Name: l[labelContainerName], Attempt: attemptOf(l)}
}

// ListContainers lists the CRI's containers, filtered by id, state,
// sandbox and labels.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	sums, err := s.b.Containers.List(daemon.ListOptions{All: true, Filters: map[string][]string{"label": {labelType + "=" + typeContainer}}})
	if err != nil {
		return nil, err
	}
	f := req.GetFilter()
	resp := &runtimeapi.ListContainersResponse{}
	for _, c := range sums {
		labels, annotations := requestLabels(c.Labels)
		state := criState(c.State)
		if !hasIDPrefix(c.ID, f.GetId()) || !hasIDPrefix(c.Labels[labelSandboxID], f.GetPodSandboxId()) ||
			(f.GetState() != nil && f.GetState().State != state) || !matchLabels(labels, f.GetLabelSelector()) {
			continue
		}
		resp.Containers = append(resp.Containers, &runtimeapi.Container{
			Id: c.ID, PodSandboxId: c.Labels[labelSandboxID], Metadata: containerMetadata(c.Labels),
			Image: &runtimeapi.ImageSpec{Image: c.Labels[labelImage]}, ImageRef: c.ImageID, ImageId: c.ImageID,
			State: state, CreatedAt: time.Unix(c.Created, 0).UnixNano(), Labels: labels, Annotations: annotations,
		})
	}
	return resp, nil
}

// ContainerStatus reports a container's state, exit, times, image, mounts
// and log path.
func (s *Server) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.ctr(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	l := c.Config.Labels
	labels, annotations := requestLabels(l)
	st := &runtimeapi.ContainerStatus{
		Id: c.ID, Metadata: containerMetadata(l), CreatedAt: parseTime(c.Created),
		Image: &runtimeapi.ImageSpec{Image: l[labelImage]}, ImageRef: c.Image, ImageId: c.Image,
		Labels: labels, Annotations: annotations, LogPath: l[labelLogPath],
		State: runtimeapi.ContainerState_CONTAINER_UNKNOWN,
	}
	if c.State != nil {
		st.State = criState(c.State.Status)
		st.StartedAt, st.FinishedAt = parseTime(c.State.StartedAt), parseTime(c.State.FinishedAt)
		if st.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			st.ExitCode = int32(c.State.ExitCode)
			switch {
			case c.State.OOMKilled:
				st.Reason = "OOMKilled"
			case c.State.ExitCode == 0:
				st.Reason = "Completed"
			default:
				st.Reason = "Error"
			}
			st.Message = c.State.Error
		}
	}
	if c.Config.User != "" {
		u, _, _ := strings.Cut(c.Config.User, ":")
		if uid, err := strconv.ParseInt(u, 10, 64); err == nil {
			st.User = &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{Uid: uid}}
		}
	}
	for _, m := range c.Mounts {
		if m.Type != mount.TypeBind {
			continue
		}
		st.Mounts = append(st.Mounts, &runtimeapi.Mount{ContainerPath: m.Destination, HostPath: m.Source, Readonly: !m.RW})
	}
	return &runtimeapi.ContainerStatusResponse{Status: st}, nil
}

package runtime

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/moby/sys/capability"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/cgroupv2"
	"github.com/lodge-containers/lodge/internal/atomicfile"
)

// An exec plan is what lodge-exec (shim/c/exec.c) needs to know of a running
// container to start a process in it as libcontainer's exec would, so that
// the C helper never parses libcontainer's state nor compiles a seccomp
// profile. lodged writes it beside the container's libcontainer state at
// the container's first exec (a start must not pay for it), and makes it
// again when the state names another init (a restart).
//
// Numbers that may not fit a JSON double (rlimits, start times, capability
// masks) are decimal strings; the seccomp program is the raw
// struct sock_filter array, native byte order, in hex.
type execPlan struct {
	Pid       int    `json:"pid"`
	StartTime string `json:"start"`
	// Namespaces are the CLONE_NEW* flags of the init's namespaces to join.
	Namespaces int `json:"ns"`
	// Cgroup is the container's cgroup v2 directory, "" for none;
	// CgroupsV1 its v1 directories.
	Cgroup          string       `json:"cgroup,omitempty"`
	CgroupsV1       []string     `json:"cgroupsV1,omitempty"`
	RootlessCgroups bool         `json:"rootlessCgroups,omitempty"`
	Caps            *planCaps    `json:"caps,omitempty"`
	NoNewPrivileges bool         `json:"nnp,omitempty"`
	NoNewKeyring    bool         `json:"noNewKeyring,omitempty"`
	RootlessEUID    bool         `json:"rootlessEUID,omitempty"`
	OomScoreAdj     *int         `json:"oomScoreAdj,omitempty"`
	Umask           *uint32      `json:"umask,omitempty"`
	Rlimits         []planRlimit `json:"rlimits,omitempty"`
	Seccomp         string       `json:"seccomp,omitempty"`
	SeccompFlags    uint         `json:"seccompFlags,omitempty"`
}

// planCaps are capability sets as bit masks (decimal strings).
type planCaps struct {
	Bounding    string `json:"bounding"`
	Effective   string `json:"effective"`
	Inheritable string `json:"inheritable"`
	Permitted   string `json:"permitted"`
	Ambient     string `json:"ambient"`
}

type planRlimit struct {
	Type int    `json:"type"`
	Soft string `json:"soft"`
	Hard string `json:"hard"`
}

// initCgroupRoot is where the cgroup hierarchies are mounted; a plan's v2
// cgroup is the init's under it. Tests make it "" (none).
var initCgroupRoot = "/sys/fs/cgroup"

// execPlanName is the plan's file in the container's libcontainer state
// directory, which goes away with the container.
const execPlanName = "lodge-exec.json"

// stateHead is the part of libcontainer's state.json that says which init
// a plan was made for.
type stateHead struct {
	Pid       int    `json:"init_process_pid"`
	StartTime uint64 `json:"init_process_start"`
}

// execPlanFor returns the path of container id's exec plan, making it when
// it is missing or was made for another init. An error says why the
// container cannot be exec'd through lodge-exec (the caller falls back to
// libcontainer's exec).
func execPlanFor(stateRoot, id string) (string, error) {
	dir := filepath.Join(stateRoot, id)
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return "", fmt.Errorf("container %s is not running here: %w", id, err)
	}
	var head stateHead
	if err := json.Unmarshal(b, &head); err != nil {
		return "", fmt.Errorf("reading container %s's state: %w", id, err)
	}
	path := filepath.Join(dir, execPlanName)
	if pb, err := os.ReadFile(path); err == nil {
		var p execPlan
		if json.Unmarshal(pb, &p) == nil && p.Pid == head.Pid && p.StartTime == strconv.FormatUint(head.StartTime, 10) {
			return path, nil
		}
	}
	c, err := libcontainer.Load(stateRoot, id)
	if err != nil {
		return "", fmt.Errorf("container %s is not running here: %w", id, err)
	}
	st, err := c.State()
	if err != nil {
		return "", err
	}
	p, err := makeExecPlan(st)
	if err != nil {
		return "", err
	}
	pb, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	if err := atomicfile.Replace(path, pb, 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// makeExecPlan turns a container's libcontainer state into its exec plan,
// or says which part of it lodge-exec does not apply.
func makeExecPlan(st *libcontainer.State) (*execPlan, error) {
	cfg := &st.Config
	switch {
	case cfg.AppArmorProfile != "":
		return nil, errors.New("the container has an AppArmor profile")
	case cfg.ProcessLabel != "":
		return nil, errors.New("the container has an SELinux label")
	case cfg.Personality != nil, cfg.Scheduler != nil, cfg.IOPriority != nil,
		cfg.ExecCPUAffinity != nil, cfg.MemoryPolicy != nil:
		return nil, errors.New("the container sets a personality, scheduler, I/O priority, CPU affinity or memory policy")
	}
	p := &execPlan{
		Pid: st.InitProcessPid, StartTime: strconv.FormatUint(st.InitProcessStartTime, 10),
		NoNewPrivileges: cfg.NoNewPrivileges, NoNewKeyring: cfg.NoNewKeyring,
		RootlessEUID: cfg.RootlessEUID, RootlessCgroups: cfg.RootlessCgroups,
		OomScoreAdj: cfg.OomScoreAdj, Umask: cfg.Umask,
	}
	for _, ns := range cfg.Namespaces {
		switch ns.Type {
		case configs.NEWNS:
			p.Namespaces |= unix.CLONE_NEWNS
		case configs.NEWPID:
			p.Namespaces |= unix.CLONE_NEWPID
		case configs.NEWNET:
			p.Namespaces |= unix.CLONE_NEWNET
		case configs.NEWIPC:
			p.Namespaces |= unix.CLONE_NEWIPC
		case configs.NEWUTS:
			p.Namespaces |= unix.CLONE_NEWUTS
		case configs.NEWUSER:
			p.Namespaces |= unix.CLONE_NEWUSER
		case configs.NEWCGROUP:
			p.Namespaces |= unix.CLONE_NEWCGROUP
		default:
			return nil, fmt.Errorf("the container has a %s namespace", ns.Type)
		}
	}
	// The exec joins the cgroups libcontainer's exec joins (best effort
	// when rootless, as there), and the init's own v2 cgroup, which lodge
	// manages beside libcontainer (on a hybrid machine libcontainer only
	// knows the v1 hierarchies).
	for k, path := range st.CgroupPaths {
		if k == "" {
			p.Cgroup = path
		} else if path != "" {
			p.CgroupsV1 = append(p.CgroupsV1, path)
		}
	}
	slices.Sort(p.CgroupsV1)
	if len(p.CgroupsV1) > 0 && !cfg.RootlessCgroups {
		return nil, errors.New("the container is in cgroup v1 hierarchies")
	}
	if p.Cgroup == "" && initCgroupRoot != "" {
		if cg, err := cgroupv2.Detect(initCgroupRoot, fmt.Sprintf("/proc/%d/cgroup", st.InitProcessPid)); err == nil && cg.V2Root != "" && cg.Own != "" {
			p.Cgroup = filepath.Join(cg.V2Root, cg.Own)
		}
	}
	if cfg.Capabilities != nil {
		caps, err := capMasks(cfg.Capabilities)
		if err != nil {
			return nil, err
		}
		p.Caps = caps
	}
	for _, r := range cfg.Rlimits {
		p.Rlimits = append(p.Rlimits, planRlimit{Type: r.Type,
			Soft: strconv.FormatUint(r.Soft, 10), Hard: strconv.FormatUint(r.Hard, 10)})
	}
	if cfg.Seccomp != nil {
		for _, sc := range cfg.Seccomp.Syscalls {
			if sc != nil && sc.Action == configs.Notify {
				return nil, errors.New("the container's seccomp profile notifies an agent")
			}
		}
		prog, flags, err := seccompProgram(cfg.Seccomp)
		if err != nil {
			return nil, err
		}
		p.Seccomp, p.SeccompFlags = hex.EncodeToString(sockFilterBytes(prog)), flags
	}
	return p, nil
}

// capMasks are libcontainer's capability sets as masks; names this kernel
// does not know are left out, as libcontainer leaves them out.
func capMasks(c *configs.Capabilities) (*planCaps, error) {
	known, err := capability.ListSupported()
	if err != nil {
		return nil, err
	}
	byName := make(map[string]capability.Cap, len(known))
	for _, k := range known {
		byName["CAP_"+strings.ToUpper(k.String())] = k
	}
	mask := func(names []string) string {
		var m uint64
		for _, n := range names {
			if k, ok := byName[n]; ok {
				m |= 1 << uint(k)
			}
		}
		return strconv.FormatUint(m, 10)
	}
	return &planCaps{Bounding: mask(c.Bounding), Effective: mask(c.Effective),
		Inheritable: mask(c.Inheritable), Permitted: mask(c.Permitted), Ambient: mask(c.Ambient)}, nil
}

// sockFilterBytes is prog as the kernel reads it.
func sockFilterBytes(prog []unix.SockFilter) []byte {
	if len(prog) == 0 {
		return nil
	}
	n := len(prog) * int(unsafe.Sizeof(prog[0]))
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), n)...)
}

package cgroupv2

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// Manager says whether lodged may ask systemd for its cgroup.
type Manager string

// The --cgroup-manager choices.
const (
	// ManagerAuto asks systemd only when lodged's cgroup is not delegated
	// to it and a user bus is there to ask on.
	ManagerAuto Manager = "auto"
	// ManagerSystemd always asks, and fails when systemd cannot be asked
	// or refuses.
	ManagerSystemd Manager = "systemd"
	// ManagerCgroupfs never asks: lodged uses the cgroup it starts in.
	ManagerCgroupfs Manager = "cgroupfs"
)

// ParseManager checks a --cgroup-manager value; "" is ManagerAuto.
func ParseManager(s string) (Manager, error) {
	switch m := Manager(s); m {
	case "":
		return ManagerAuto, nil
	case ManagerAuto, ManagerSystemd, ManagerCgroupfs:
		return m, nil
	}
	return "", fmt.Errorf("cgroup manager %q is none of auto, systemd, cgroupfs", s)
}

// Systemd is the part of a systemd manager's D-Bus API that RequestScope
// uses. Implementations need not be safe for concurrent use.
type Systemd interface {
	// StartTransientUnit creates and starts a transient unit and waits for
	// its start job to end. It returns the job's result: "done" when the
	// unit started; an error when systemd refused the request.
	StartTransientUnit(ctx context.Context, name string, props []sddbus.Property) (result string, err error)
	// Close ends the connection.
	Close()
}

// ScopeRequest is what RequestScope needs to know.
type ScopeRequest struct {
	Manager Manager
	// State is where the caller sits now (Detect).
	State State
	// Bus is the user bus's address, "" when there is none (UserBus).
	Bus string
	// Dial connects to the systemd manager on the bus at an address.
	Dial func(ctx context.Context, address string) (Systemd, error)
	// PID is the process to move into the scope; UID names the scope.
	PID, UID int
}

// Scope is what came of asking systemd for a delegated scope.
type Scope struct {
	// Unit is the scope systemd made for lodged ("" when none).
	Unit string
	// Note says in a few words what happened, for logs and info ("" when
	// there was nothing to ask).
	Note string
}

// UserSlice is the slice of the user's systemd manager lodged's scope
// goes in, as Podman's do.
const UserSlice = "user.slice"

// RequestScope asks the user's systemd manager, when r.Manager says so,
// for a transient scope with Delegate=yes holding process r.PID, so that
// the process (and what it forks afterwards) lands in a cgroup delegated to
// the user. Call it from the host's user namespace, before forking:
// D-Bus's EXTERNAL authentication sends the caller's uid as the caller
// sees it, and only processes started afterwards follow it into the scope.
//
// With ManagerAuto nothing is asked when r.State is writable (a delegation
// made on purpose, where a scope of the same user manager would get no
// more controllers) or there is no v2 hierarchy or no bus; a failure is
// only noted. With ManagerSystemd every failure is an error.
func RequestScope(ctx context.Context, r ScopeRequest) (Scope, error) {
	switch r.Manager {
	case ManagerCgroupfs:
		return Scope{}, nil
	case ManagerAuto:
		if r.State.Writable || r.State.V2Root == "" {
			return Scope{}, nil
		}
		if r.Bus == "" {
			return Scope{Note: "systemd not asked for a delegated scope: no user bus at $DBUS_SESSION_BUS_ADDRESS or $XDG_RUNTIME_DIR/bus"}, nil
		}
	case ManagerSystemd:
		if r.State.V2Root == "" {
			return Scope{}, fmt.Errorf("--cgroup-manager systemd: this machine has no cgroup v2 hierarchy, and lodge delegates only v2")
		}
		if r.Bus == "" {
			return Scope{}, fmt.Errorf("--cgroup-manager systemd: no systemd user bus: $DBUS_SESSION_BUS_ADDRESS is unset and $XDG_RUNTIME_DIR/bus is not a socket " +
				"(a systemd user manager, user@.service, serves it; start lodged from a login session, or use --cgroup-manager cgroupfs)")
		}
	default:
		return Scope{}, fmt.Errorf("cgroup manager %q is none of auto, systemd, cgroupfs", r.Manager)
	}
	fail := func(err error) (Scope, error) {
		if r.Manager == ManagerSystemd {
			return Scope{}, fmt.Errorf("--cgroup-manager systemd: %w", err)
		}
		return Scope{Note: fmt.Sprintf("systemd gave no delegated scope (%v); lodged stays in %s", err, r.State.Own)}, nil
	}
	name, err := scopeName(r.UID, r.PID)
	if err != nil {
		return fail(err)
	}
	sd, err := r.Dial(ctx, r.Bus)
	if err != nil {
		return fail(fmt.Errorf("connecting to the user bus at %s: %w", r.Bus, err))
	}
	defer sd.Close()
	res, err := sd.StartTransientUnit(ctx, name, scopeProperties(r.PID))
	if err != nil {
		return fail(fmt.Errorf("systemd refused scope %s: %w", name, err))
	}
	if res != "done" {
		return fail(fmt.Errorf("systemd's job starting scope %s ended %q", name, res))
	}
	return Scope{Unit: name, Note: "systemd delegated scope " + name}, nil
}

// scopeName is unique per user and start: the pid alone could come back
// while an earlier lodged's scope still holds its containers.
func scopeName(uid, pid int) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("lodged-%d-%d-%s.scope", uid, pid, hex.EncodeToString(b[:])), nil
}

func scopeProperties(pid int) []sddbus.Property {
	return []sddbus.Property{
		{Name: "Description", Value: dbus.MakeVariant("lodge: lodged, its namespaces and containers")},
		sddbus.PropSlice(UserSlice),
		sddbus.PropPids(uint32(pid)),
		{Name: "Delegate", Value: dbus.MakeVariant(true)},
	}
}

// UserBus finds the address of the user's bus, which a systemd user
// manager serves: $DBUS_SESSION_BUS_ADDRESS, else the socket
// $XDG_RUNTIME_DIR/bus, else "". It never starts a bus.
func UserBus(getenv func(string) string) string {
	if a := getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return a
	}
	dir := getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		return ""
	}
	p := filepath.Join(dir, "bus")
	if fi, err := os.Stat(p); err == nil && fi.Mode().Type() == os.ModeSocket {
		return "unix:path=" + dbus.EscapeBusAddressValue(p)
	}
	return ""
}

// In reports whether State s lies in the unit: its base is the unit's
// cgroup, or lodged sits in the unit itself.
func (sc Scope) In(s State) bool {
	return sc.Unit != "" && (path.Base(s.Base) == sc.Unit || path.Base(s.Own) == sc.Unit)
}

// Driver is docker info's "Cgroup Driver" for State s: "systemd" when
// lodged got its cgroup from systemd, "cgroupfs" when it otherwise may
// make cgroups, "none" when it may not.
func (sc Scope) Driver(s State) string {
	switch {
	case !s.Writable:
		return "none"
	case sc.In(s):
		return "systemd"
	}
	return "cgroupfs"
}

// Summary is State s's Summary with the note on the scope request.
func (sc Scope) Summary(s State) string {
	if sc.Note == "" {
		return s.Summary()
	}
	return s.Summary() + "; " + sc.Note
}

package cgroupv2

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// fakeSystemd records what RequestScope sends and answers as told.
type fakeSystemd struct {
	dialed  []string
	names   []string
	props   map[string]any
	result  string
	err     error
	dialErr error
	closed  int
}

func (f *fakeSystemd) dial(_ context.Context, address string) (Systemd, error) {
	f.dialed = append(f.dialed, address)
	if f.dialErr != nil {
		return nil, f.dialErr
	}
	return f, nil
}

func (f *fakeSystemd) StartTransientUnit(_ context.Context, name string, props []sddbus.Property) (string, error) {
	f.names = append(f.names, name)
	f.props = map[string]any{}
	for _, p := range props {
		f.props[p.Name] = p.Value.Value()
	}
	return f.result, f.err
}

func (f *fakeSystemd) Close() { f.closed++ }

var (
	notDelegated = State{Layout: Unified, V2Root: "/sys/fs/cgroup", Own: "/user.slice/user-1000.slice/session-2.scope", Base: "/user.slice/user-1000.slice/session-2.scope"}
	delegated    = State{Layout: Unified, V2Root: "/sys/fs/cgroup", Own: "/user.slice/user-1000.slice/user@1000.service/app.slice/x/lodged", Base: "/user.slice/user-1000.slice/user@1000.service/app.slice/x", Controllers: []string{"memory", "pids"}, Writable: true}
)

const bus = "unix:path=/run/user/1000/bus"

func request(f *fakeSystemd, m Manager, s State, busAddr string) ScopeRequest {
	return ScopeRequest{Manager: m, State: s, Bus: busAddr, Dial: f.dial, PID: 4242, UID: 1000}
}

func TestRequestScopeSendsDelegatedScope(t *testing.T) {
	for _, m := range []Manager{ManagerAuto, ManagerSystemd} {
		t.Run(string(m), func(t *testing.T) {
			f := &fakeSystemd{result: "done"}
			sc, err := RequestScope(context.Background(), request(f, m, notDelegated, bus))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(f.dialed, []string{bus}) || len(f.names) != 1 || f.closed != 1 {
				t.Fatalf("dialed %v, asked for %v, closed %d times", f.dialed, f.names, f.closed)
			}
			name := f.names[0]
			if !strings.HasPrefix(name, "lodged-1000-4242-") || !strings.HasSuffix(name, ".scope") {
				t.Errorf("unit name %q", name)
			}
			if sc.Unit != name || !strings.Contains(sc.Note, name) {
				t.Errorf("scope %+v, asked for %s", sc, name)
			}
			if f.props["Delegate"] != true {
				t.Errorf("Delegate = %v", f.props["Delegate"])
			}
			if !reflect.DeepEqual(f.props["PIDs"], []uint32{4242}) {
				t.Errorf("PIDs = %#v", f.props["PIDs"])
			}
			if f.props["Slice"] != "user.slice" {
				t.Errorf("Slice = %v", f.props["Slice"])
			}
		})
	}
}

func TestRequestScopeNamesAreUniquePerStart(t *testing.T) {
	f := &fakeSystemd{result: "done"}
	for i := 0; i < 2; i++ {
		if _, err := RequestScope(context.Background(), request(f, ManagerAuto, notDelegated, bus)); err != nil {
			t.Fatal(err)
		}
	}
	if f.names[0] == f.names[1] {
		t.Fatalf("two starts asked for the same unit %s", f.names[0])
	}
}

func TestRequestScopeAsksNothing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		m        Manager
		s        State
		bus      string
		wantNote string
	}{
		{"auto, already delegated", ManagerAuto, delegated, bus, ""},
		{"auto, writable without controllers", ManagerAuto, State{Layout: Hybrid, V2Root: "/sys/fs/cgroup/unified", Own: "/t", Base: "/t", Writable: true}, bus, ""},
		{"auto, cgroup v1 only", ManagerAuto, State{Layout: Legacy}, bus, ""},
		{"auto, no bus", ManagerAuto, notDelegated, "", "no user bus"},
		{"cgroupfs, not delegated", ManagerCgroupfs, notDelegated, bus, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSystemd{result: "done"}
			sc, err := RequestScope(context.Background(), request(f, tc.m, tc.s, tc.bus))
			if err != nil {
				t.Fatal(err)
			}
			if len(f.dialed) != 0 || len(f.names) != 0 {
				t.Fatalf("asked systemd: dialed %v, units %v", f.dialed, f.names)
			}
			if sc.Unit != "" || tc.wantNote == "" && sc.Note != "" || !strings.Contains(sc.Note, tc.wantNote) {
				t.Fatalf("scope %+v, want note with %q", sc, tc.wantNote)
			}
		})
	}
}

func TestRequestScopeSystemdModeAsksEvenWhenDelegated(t *testing.T) {
	f := &fakeSystemd{result: "done"}
	sc, err := RequestScope(context.Background(), request(f, ManagerSystemd, delegated, bus))
	if err != nil || sc.Unit == "" || len(f.names) != 1 {
		t.Fatalf("scope %+v, err %v, units %v", sc, err, f.names)
	}
}

func TestRequestScopeFailures(t *testing.T) {
	refused := errors.New("org.freedesktop.DBus.Error.AccessDenied: no")
	for _, tc := range []struct {
		name string
		f    *fakeSystemd
		bus  string
		want string // in the error (systemd) and the note (auto)
	}{
		{"no bus", &fakeSystemd{}, "", "no systemd user bus"},
		{"bus does not answer", &fakeSystemd{dialErr: errors.New("connection refused")}, bus, "connection refused"},
		{"systemd refuses", &fakeSystemd{err: refused}, bus, "systemd refused scope lodged-1000-4242-"},
		{"job fails", &fakeSystemd{result: "failed"}, bus, `ended "failed"`},
	} {
		t.Run(tc.name+"/systemd", func(t *testing.T) {
			sc, err := RequestScope(context.Background(), request(tc.f, ManagerSystemd, notDelegated, tc.bus))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--cgroup-manager systemd") {
				t.Fatalf("err %v, want one with %q", err, tc.want)
			}
			if sc != (Scope{}) {
				t.Fatalf("scope %+v on failure", sc)
			}
		})
		if tc.bus == "" {
			continue // auto without a bus asks nothing: TestRequestScopeAsksNothing
		}
		t.Run(tc.name+"/auto", func(t *testing.T) {
			sc, err := RequestScope(context.Background(), request(tc.f, ManagerAuto, notDelegated, tc.bus))
			if err != nil {
				t.Fatalf("auto mode failed: %v", err)
			}
			if sc.Unit != "" || !strings.Contains(sc.Note, tc.want) || !strings.Contains(sc.Note, notDelegated.Own) {
				t.Fatalf("scope %+v, want a note with %q and where lodged stays", sc, tc.want)
			}
		})
	}
}

func TestParseManager(t *testing.T) {
	for in, want := range map[string]Manager{"": ManagerAuto, "auto": ManagerAuto, "systemd": ManagerSystemd, "cgroupfs": ManagerCgroupfs} {
		if m, err := ParseManager(in); err != nil || m != want {
			t.Errorf("ParseManager(%q) = %q, %v", in, m, err)
		}
	}
	if _, err := ParseManager("systemd-ish"); err == nil {
		t.Error("ParseManager accepted systemd-ish")
	}
}

func TestUserBus(t *testing.T) {
	dir := t.TempDir()
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	if got := UserBus(env(map[string]string{"DBUS_SESSION_BUS_ADDRESS": "unix:path=/x", "XDG_RUNTIME_DIR": dir})); got != "unix:path=/x" {
		t.Errorf("with DBUS_SESSION_BUS_ADDRESS: %q", got)
	}
	if got := UserBus(env(map[string]string{"XDG_RUNTIME_DIR": dir})); got != "" {
		t.Errorf("without a bus socket: %q", got)
	}
	if got := UserBus(env(map[string]string{"DBUS_SESSION_BUS_ADDRESS": "autolaunch:"})); got != "" {
		t.Errorf("autolaunch: %q", got)
	}
	l, err := net.Listen("unix", filepath.Join(dir, "bus"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := UserBus(env(map[string]string{"XDG_RUNTIME_DIR": dir})); got != "unix:path="+filepath.Join(dir, "bus") {
		t.Errorf("with $XDG_RUNTIME_DIR/bus: %q", got)
	}
}

func TestScopeDriverAndSummary(t *testing.T) {
	inScope := State{Layout: Unified, V2Root: "/sys/fs/cgroup", Own: "/u/user.slice/lodged-1000-1-ab.scope/lodged", Base: "/u/user.slice/lodged-1000-1-ab.scope", Controllers: []string{"memory"}, Writable: true}
	sc := Scope{Unit: "lodged-1000-1-ab.scope", Note: "systemd delegated scope lodged-1000-1-ab.scope"}
	if d := sc.Driver(inScope); d != "systemd" {
		t.Errorf("in the scope: driver %s", d)
	}
	if d := sc.Driver(delegated); d != "cgroupfs" {
		t.Errorf("elsewhere (an older keeper's cgroup): driver %s", d)
	}
	if d := (Scope{}).Driver(notDelegated); d != "none" {
		t.Errorf("not writable: driver %s", d)
	}
	if s := sc.Summary(inScope); !strings.HasPrefix(s, inScope.Summary()) || !strings.HasSuffix(s, "; "+sc.Note) {
		t.Errorf("summary %q", s)
	}
	if s := (Scope{}).Summary(inScope); s != inScope.Summary() {
		t.Errorf("summary without a note %q", s)
	}
}

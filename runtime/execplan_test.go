package runtime

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// exportBPF is what libseccomp itself exports for a filter of default
// action def whose only rule gives mkdir EACCES.
func exportBPF(t *testing.T, def libseccomp.ScmpAction) []byte {
	t.Helper()
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	if err := f.SetNoNewPrivsBit(false); err != nil {
		t.Fatal(err)
	}
	nr, err := libseccomp.GetSyscallFromName("mkdir")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.AddRule(nr, libseccomp.ActErrno.SetReturnCode(int16(unix.EACCES))); err != nil {
		t.Fatal(err)
	}
	out, err := os.CreateTemp(t.TempDir(), "bpf")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := f.ExportBPF(out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mkdirProfile(def configs.Action) *configs.Seccomp {
	eperm, eacces := uint(unix.EPERM), uint(unix.EACCES)
	return &configs.Seccomp{DefaultAction: def, DefaultErrnoRet: &eperm,
		Syscalls: []*configs.Syscall{{Name: "mkdir", Action: configs.Errno, ErrnoRet: &eacces}}}
}

// TestSeccompProgramIsLibcontainers: the program a plan carries is the one
// libcontainer loads: libseccomp's own export when the profile allows by
// default, and that export behind libcontainer's -ENOSYS stub otherwise.
func TestSeccompProgramIsLibcontainers(t *testing.T) {
	prog, flags, err := seccompProgram(mkdirProfile(configs.Allow))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sockFilterBytes(prog), exportBPF(t, libseccomp.ActAllow); !bytes.Equal(got, want) {
		t.Errorf("program with default allow:\n got %x\nwant %x", got, want)
	}
	if flags != 0 {
		t.Errorf("flags %d, want 0", flags)
	}
	prog, _, err = seccompProgram(mkdirProfile(configs.Errno))
	if err != nil {
		t.Fatal(err)
	}
	got, want := sockFilterBytes(prog), exportBPF(t, libseccomp.ActErrno.SetReturnCode(int16(unix.EPERM)))
	if !bytes.HasSuffix(got, want) || len(got) == len(want) {
		t.Errorf("program with default EPERM is not libseccomp's behind a stub:\n got %x\nwant ...%x", got, want)
	}
	// The capture leaves no thread of this process with a filter (its
	// thread ends soon after the call).
	deadline := time.Now().Add(5 * time.Second)
	for filtered := filteredThreads(t); len(filtered) > 0; filtered = filteredThreads(t) {
		if time.Now().After(deadline) {
			t.Fatalf("threads %v keep a seccomp filter after making programs", filtered)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func filteredThreads(t *testing.T) []string {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil {
		t.Fatal(err)
	}
	var filtered []string
	for _, task := range tasks {
		if s := statusField(t, task, "Seccomp"); s != "0" && s != "" {
			filtered = append(filtered, task)
		}
	}
	return filtered
}

func statusField(t *testing.T, path, key string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return "" // a thread that ended
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if k, v, ok := bytes.Cut(l, []byte(":")); ok && string(k) == key {
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}

func TestMakeExecPlan(t *testing.T) {
	adj := -500
	st := &libcontainer.State{}
	st.InitProcessPid, st.InitProcessStartTime = 42, 1234567890123
	st.CgroupPaths = map[string]string{"": "/sys/fs/cgroup/x"}
	st.Config = configs.Config{
		Namespaces: configs.Namespaces{{Type: configs.NEWNS}, {Type: configs.NEWPID}, {Type: configs.NEWNET, Path: "/run/netns/x"}},
		Capabilities: &configs.Capabilities{
			Bounding:  []string{"CAP_CHOWN", "CAP_KILL", "CAP_NO_SUCH_THING"},
			Effective: []string{"CAP_KILL"}, Permitted: []string{"CAP_KILL"},
		},
		NoNewPrivileges: true, OomScoreAdj: &adj,
		Rlimits: []configs.Rlimit{{Type: unix.RLIMIT_NOFILE, Soft: 1024, Hard: ^uint64(0)}},
		Seccomp: mkdirProfile(configs.Allow),
	}
	p, err := makeExecPlan(st)
	if err != nil {
		t.Fatal(err)
	}
	if p.Pid != 42 || p.StartTime != "1234567890123" || p.Cgroup != "/sys/fs/cgroup/x" || !p.NoNewPrivileges || *p.OomScoreAdj != -500 {
		t.Errorf("plan %+v", p)
	}
	if want := unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWNET; p.Namespaces != want {
		t.Errorf("namespaces %#x, want %#x", p.Namespaces, want)
	}
	mask := func(caps ...int) string {
		var m uint64
		for _, c := range caps {
			m |= 1 << c
		}
		return strconv.FormatUint(m, 10)
	}
	want := planCaps{Bounding: mask(unix.CAP_CHOWN, unix.CAP_KILL), Effective: mask(unix.CAP_KILL),
		Permitted: mask(unix.CAP_KILL), Inheritable: "0", Ambient: "0"}
	if *p.Caps != want {
		t.Errorf("caps %+v, want %+v", *p.Caps, want)
	}
	if len(p.Rlimits) != 1 || p.Rlimits[0] != (planRlimit{Type: unix.RLIMIT_NOFILE, Soft: "1024", Hard: "18446744073709551615"}) {
		t.Errorf("rlimits %+v", p.Rlimits)
	}
	if b, err := hex.DecodeString(p.Seccomp); err != nil || !bytes.Equal(b, exportBPF(t, libseccomp.ActAllow)) {
		t.Errorf("seccomp %s (%v)", p.Seccomp, err)
	}
	st.Config.ProcessLabel = "system_u:system_r:container_t"
	if _, err := makeExecPlan(st); err == nil {
		t.Error("a plan for a labelled container: lodge-exec applies no label")
	}
}

// TestSeccompProgramUnderSignals: signals that interrupt the caught load
// (the kernel withdraws its notification, the call restarts) neither hang
// the capture nor change the program.
//
// With a filter flag libcontainer loads through a raw syscall, which holds
// its P while it waits for the answer: a GC stop then waits on it, so the
// answer must not need the Go scheduler.
func TestSeccompProgramUnderSignals(t *testing.T) {
	profile := mkdirProfile(configs.Errno)
	profile.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow}
	want, flags, err := seccompProgram(profile)
	if err != nil {
		t.Fatal(err)
	}
	if flags != unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW {
		t.Errorf("flags %#x, want SECCOMP_FILTER_FLAG_SPEC_ALLOW", flags)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				// Every thread, the capturing one included (a signal to
				// the process goes to its main thread); the Go runtime
				// takes SIGURG as a preemption request.
				tasks, _ := filepath.Glob("/proc/self/task/*")
				for _, task := range tasks {
					if tid, err := strconv.Atoi(filepath.Base(task)); err == nil {
						_ = unix.Tgkill(os.Getpid(), tid, unix.SIGURG)
					}
				}
				goruntime.GC()
				time.Sleep(50 * time.Microsecond)
			}
		}
	}()
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 200; i++ {
			got, _, err := seccompProgram(profile)
			if err != nil {
				done <- err
				return
			}
			if !bytes.Equal(sockFilterBytes(got), sockFilterBytes(want)) {
				done <- fmt.Errorf("round %d: another program", i)
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("making seccomp programs under signals hangs")
	}
}

package runtime

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/cgroupv2"

	"github.com/lodge-containers/lodge/shim"
)

// A monitor can die (kill -9, the OOM killer) while its container runs
// on. The daemon then starts another one for the container, which adopts
// it: the container's output pipes (or tty master) come to it from the
// daemon, which has held duplicates of them since the container started,
// so the pipes never lose their last reader (no SIGPIPE; what is in the
// pipe waits for the new monitor; only what the dead one had read and not
// yet logged, one read at most, is lost with it). The adopting
// monitor logs and serves attach and control as the first did; only the
// container's stdin and its exit code are gone with the first monitor (its
// parent: the init's status goes to whoever reaps it now). It waits for
// the init through a pidfd and reports 128+the signal it last sent, or 255
// with the reason.

// AdoptMonitor starts a monitor for a running container whose first
// monitor died: cfgPath is a shim.MonitorConfig with Adopt set, outputs the
// files shim.OutputFiles gave (they are passed on, not closed). It returns once
// the monitor listens.
func AdoptMonitor(ctx context.Context, cfgPath, logPath string, outputs []*os.File) error {
	_, err := startMonitor(ctx, cfgPath, logPath, outputs)
	return err
}

// adopt takes over a running container: its output from the files after
// the status pipe (fd 4 on), its init through its pid and start time.
func (m *monitor) adopt() error {
	a := m.cfg.Adopt
	if !a.Alive() {
		return shim.ErrInitGone
	}
	if m.cfg.MonitorCgroup != "" {
		// Where the first monitor waited, out of the container's cgroup.
		// Left where it started (lodged's cgroup) it works as well: said
		// in its log, not a failed adoption.
		if err := cgroupv2.Join(m.cfg.MonitorCgroup, os.Getpid()); err != nil {
			fmt.Fprintln(os.Stderr, "lodge-monitor: adopting: joining the monitors' cgroup:", err)
		}
	}
	if err := os.Chdir(m.cfg.Bundle); err != nil {
		return err
	}
	if err := m.listen(); err != nil {
		return err
	}
	m.streams = m.cfg.AdoptStreams
	for i := range m.streams {
		unix.CloseOnExec(4 + i) // not for a runtime binary this runs
		f := os.NewFile(uintptr(4+i), m.streams[i])
		if f == nil {
			return fmt.Errorf("adopting: no file for %s", m.streams[i])
		}
		m.outputs = append(m.outputs, f)
	}
	if m.cfg.Tty && len(m.outputs) == 1 {
		m.console = m.outputs[0]
	}
	m.pid = a.Pid
	return nil
}

// ReopenOutputs opens new read ends of a running container's stdout and
// stderr pipes through its init's /proc/PID/fd, for a monitor to adopt it
// when nobody held copies (its monitor died while no lodged ran): what was
// written while the pipes had no reader is lost, what comes after is not.
// It fails for a tty (the init holds the slave; the master is gone) and
// when the init's stdout or stderr is not a pipe any more.
func ReopenOutputs(init shim.InitProc) ([]*os.File, []string, error) {
	streams := []string{"stdout", "stderr"}
	var files []*os.File
	fail := func(err error) ([]*os.File, []string, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, nil, err
	}
	for i := range streams {
		// Non-blocking: a pipe without a writer left would block the open.
		f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/%d", init.Pid, i+1), os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail(err)
		}
		files = append(files, f)
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			return fail(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFIFO {
			return fail(fmt.Errorf("the init's %s is not a pipe", streams[i]))
		}
		if err := unix.SetNonblock(int(f.Fd()), false); err != nil {
			return fail(err)
		}
	}
	// Opened through the pid: it must still be the init.
	if !init.Alive() {
		return fail(shim.ErrInitGone)
	}
	return files, streams, nil
}

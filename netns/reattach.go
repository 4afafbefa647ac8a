package netns

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"syscall"
	"time"

	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port/builtin/parent"
	"github.com/vishvananda/netlink"
)

// Reattach is what lodged's host side gave the uplink namespace, started
// again from inside lodged's user namespace once that side died: the
// uplink and both halves of the port driver. Close stops it.
type Reattach struct {
	// Uplink is the uplink's process, nil when the driver cannot be
	// re-attached.
	Uplink *exec.Cmd
	// Ports is the port driver's parent half, for rootlesskit's API.
	Ports port.ParentDriver

	quit  []chan struct{}
	ended []chan error
}

// ReattachConfig says what to re-create.
type ReattachConfig struct {
	// Driver is the uplink driver's name (as Choose gave it).
	Driver string
	// NSPath is the uplink namespace to attach to.
	NSPath string
	// StateDir is rootlesskit's state directory, for the port driver's
	// sockets.
	StateDir string
	Log      io.Writer
}

// StartReattach re-creates the uplink and the port driver. slirp4netns
// and lodge-usernet can attach from inside the namespace (rootlesskit's
// drivers join the user namespace from outside, which a process already in
// it cannot): with another driver (pasta) the uplink stays down, which the
// error says, and the ports still work.
func StartReattach(cfg ReattachConfig) (*Reattach, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	r := &Reattach{}
	var uplinkErr error
	switch cfg.Driver {
	case Slirp4netns:
		// The dead uplink's tap stays while anything holds its
		// descriptor (processes started since inherit it), with the
		// default route on it: the new one needs the name and the route.
		if err := in(cfg.NSPath, delGoneTap); err != nil {
			uplinkErr = fmt.Errorf("removing the dead uplink's tap: %w", err)
			break
		}
		r.Uplink, uplinkErr = startSlirp(cfg.NSPath, cfg.Log)
	case GvisorTap:
		r.Uplink, uplinkErr = startUsernetReattach(cfg.StateDir, cfg.NSPath, cfg.Log)
	case None, "":
	default:
		uplinkErr = fmt.Errorf("the %s uplink cannot be re-attached from inside the namespace: containers have no outbound network until lodged is restarted with no container running", cfg.Driver)
	}
	if err := r.startPorts(cfg); err != nil {
		r.Close()
		return nil, err
	}
	return r, uplinkErr
}

// delGoneTap removes the dead uplink's tap0 if it is still there. The
// dying uplink may take it with it at any moment (its last descriptor
// closing), also between the lookup and the removal: a tap that is gone
// by then (ENODEV) is what was wanted, not an error.
func delGoneTap(h *netlink.Handle) error {
	l, err := h.LinkByName("tap0")
	if err != nil {
		return nil
	}
	if err := h.LinkDel(l); err != nil && !errors.Is(err, syscall.ENODEV) {
		return err
	}
	return nil
}

// startSlirp runs slirp4netns on the namespace at nsPath with the
// addresses rootlesskit's driver gives (10.0.2.100, gateway 10.0.2.2, DNS
// 10.0.2.3), configuring tap0 itself. The tap of the dead one went with its
// process. It dies with this process: its parent-death signal follows the
// thread that started it, so that thread is kept for it (lodged discards
// threads that entered a namespace, and with them what they started).
func startSlirp(nsPath string, logw io.Writer) (*exec.Cmd, error) {
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer readyR.Close()
	args := []string{"--configure", "--mtu", "65520", "-r", "3", "--cidr", UplinkCIDR}
	if feat, err := slirpSeccomp(); err == nil && feat {
		args = append(args, "--enable-seccomp")
	}
	cmd := exec.Command("slirp4netns", append(args, "--netns-type=path", nsPath, "tap0")...)
	cmd.Stdout, cmd.Stderr = logw, logw
	cmd.ExtraFiles = []*os.File{readyW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	go func() {
		goruntime.LockOSThread() // never unlocked: the thread lives as long as lodged
		started <- cmd.Start()
		select {} // keep the thread
	}()
	err = <-started
	readyW.Close()
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() {
		b := make([]byte, 1)
		_, err := readyR.Read(b)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			return cmd, nil
		}
		cmd.Process.Kill()
		_ = cmd.Wait() // reaps the killed process: its exit says nothing new
		return nil, fmt.Errorf("slirp4netns did not come up: %w", err)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		_ = cmd.Wait() // as above
		return nil, errors.New("slirp4netns did not come up within 30s")
	}
}

// slirpSeccomp tells whether slirp4netns and the kernel support
// --enable-seccomp, as the driver Choose built decides.
func slirpSeccomp() (bool, error) {
	out, err := exec.Command("slirp4netns", "--help").CombinedOutput()
	if err != nil {
		return false, err
	}
	if !bytes.Contains(out, []byte("--enable-seccomp")) {
		return false, nil
	}
	_, err = os.Stat("/proc/sys/kernel/seccomp/actions_avail")
	return err == nil, nil
}

// startPorts runs both halves of rootlesskit's builtin port driver in this
// process: the parent half listens on the host (this process shares the
// host's network namespace), the child half dials into the uplink
// namespace.
func (r *Reattach) startPorts(cfg ReattachConfig) error {
	for _, f := range []string{".bp.sock", ".bp-ready.pipe"} {
		_ = os.Remove(filepath.Join(cfg.StateDir, f)) // the dead driver's; one that stays fails the listen below
	}
	pd, err := parent.NewDriver(cfg.Log, cfg.StateDir, false, "")
	if err != nil {
		return err
	}
	childQuit, parentQuit := make(chan struct{}), make(chan struct{})
	childEnd, parentEnd := make(chan error, 1), make(chan error, 1)
	go func() { childEnd <- PortChild(cfg.Log).RunChildDriver(pd.OpaqueForChild(), childQuit, cfg.NSPath) }()
	ready := make(chan struct{}, 1)
	cctx := &port.ChildContext{IP: net.ParseIP("10.0.2.100").To4()}
	go func() { parentEnd <- pd.RunParentDriver(ready, parentQuit, cctx) }()
	select {
	case <-ready:
	case err := <-parentEnd:
		close(childQuit)
		return fmt.Errorf("port driver: %w", err)
	case err := <-childEnd:
		close(parentQuit)
		return fmt.Errorf("port driver, namespace half: %w", err)
	case <-time.After(30 * time.Second):
		return errors.New("port driver did not come up within 30s")
	}
	r.Ports = pd
	r.quit = []chan struct{}{parentQuit, childQuit}
	r.ended = []chan error{parentEnd, childEnd}
	return nil
}

// Close stops the uplink and the port driver.
func (r *Reattach) Close() {
	if r.Uplink != nil {
		r.Uplink.Process.Kill()
		_ = r.Uplink.Wait() // reaps the killed uplink
	}
	for i, q := range r.quit {
		close(q)
		select {
		case err := <-r.ended[i]:
			_ = err // a driver stopped on purpose ends with an error of no interest
		case <-time.After(2 * time.Second):
		}
	}
}

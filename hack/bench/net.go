package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// publishedPort is TCP throughput through a published port: the host
// downloads a file that busybox httpd serves from a container on
// 127.0.0.1:PORT, on each engine in turn (lodge: rootlesskit's builtin
// port driver to the container's bridge address; Docker rootless and
// Podman: their defaults). Higher is better, so the ratio is lodge over
// the faster anchor's figure.
func publishedPort(e *env, reps int) []result {
	return append(portThroughput(e, reps), uplinkThroughput(e, reps), networkStartCost(e, reps))
}

// uplinkThroughput is TCP throughput from the host to a container through
// the uplink (slirp4netns by default on all three engines): a container
// downloads 256 MiB that this process serves on the host's 127.0.0.1,
// reached as 10.0.2.2 through slirp4netns on all three engines (the
// benchmark turns on host loopback for Docker rootless and Podman, which
// keep it off by default), so no traffic goes to any other address. The
// time is taken on the serving side, from the request to the last byte
// handed to the kernel.
func uplinkThroughput(e *env, reps int) result {
	const mib = 256
	r := result{Figure: fmt.Sprintf("uplink TCP, container downloads %d MiB from the host", mib), Unit: "Gbit/s", HigherIsBetter: true}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		r.Notes = append(r.Notes, err.Error())
		return r
	}
	took := make(chan time.Duration, 1)
	zeros := make([]byte, 1<<20)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t0 := time.Now()
		w.Header().Set("Content-Length", strconv.Itoa(mib<<20))
		for i := 0; i < mib; i++ {
			if _, err := w.Write(zeros); err != nil {
				return
			}
		}
		took <- time.Since(t0)
	})}
	// Serve returns ErrServerClosed at the deferred Close.
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	url := fmt.Sprintf("http://10.0.2.2:%d/", l.Addr().(*net.TCPAddr).Port)
	series := map[string]stats{}
	for i := 0; i < reps+1; i++ {
		for _, eng := range e.engines {
			if eng.why != "" {
				continue
			}
			if o := e.docker(eng, "run", "--rm", "busybox", "busybox", "wget", "-qO", "/dev/null", url); o.err != nil {
				r.Notes = append(r.Notes, eng.name+": "+o.String())
				continue
			}
			select {
			case d := <-took:
				if i > 0 {
					series[eng.name] = append(series[eng.name], float64(mib<<20)*8/d.Seconds()/1e9)
				}
			case <-time.After(time.Second):
			}
		}
	}
	setSeries(&r, series)
	r = finish(r)
	r.Notes = append(r.Notes, "higher is better; served on the host's 127.0.0.1, reached as 10.0.2.2")
	return r
}

// networkStartCost is what a network adds to `docker run --rm busybox
// true`: the median with the default bridge minus the median with
// --network none, interleaved on each engine.
func networkStartCost(e *env, reps int) result {
	r := result{Figure: "network's cost to docker run --rm busybox true (bridge minus none)", Unit: "ms"}
	for _, eng := range e.engines {
		if eng.why != "" {
			continue
		}
		series := map[string]stats{}
		for i := 0; i < reps+1; i++ {
			for _, mode := range []string{"bridge", "none"} {
				t0 := time.Now()
				if o := e.docker(eng, "run", "--rm", "--network", mode, "busybox", "true"); o.err != nil {
					r.Notes = append(r.Notes, eng.name+": "+o.String())
					break
				}
				if i > 0 {
					series[mode] = append(series[mode], float64(time.Since(t0).Microseconds())/1000)
				}
			}
		}
		if len(series["bridge"]) > 0 && len(series["none"]) > 0 {
			set(&r, eng.name, series["bridge"].median()-series["none"].median())
		}
	}
	return finish(r)
}

func portThroughput(e *env, reps int) []result {
	const mib = 256
	r := result{Figure: fmt.Sprintf("published port TCP, host downloads %d MiB", mib), Unit: "Gbit/s", HigherIsBetter: true}
	cpu := result{Figure: "published port: CPU of the host-side listening process per GiB", Unit: "ms"}
	series, cpus := map[string]stats{}, map[string]stats{}
	for _, eng := range e.engines {
		if eng.why != "" {
			continue
		}
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			r.Notes = append(r.Notes, err.Error())
			return []result{r}
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		name := "lodge-bench-net"
		e.docker(eng, "rm", "-f", name)
		o := e.docker(eng, "run", "-d", "--name", name, "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "busybox", "sh", "-c",
			fmt.Sprintf("dd if=/dev/zero of=/tmp/big bs=1M count=%d 2>/dev/null && exec httpd -f -p 80 -h /tmp", mib))
		if o.err != nil {
			r.Notes = append(r.Notes, eng.name+": "+o.String())
			continue
		}
		url := fmt.Sprintf("http://127.0.0.1:%d/big", port)
		var s, c stats
		pid := 0
		for i := 0; i < reps+1; i++ {
			if i == 1 {
				pid = listener(port)
			}
			t0 := cpuTicks(pid)
			gbps, err := download(url, mib<<20)
			if err != nil {
				r.Notes = append(r.Notes, eng.name+": "+err.Error())
				break
			}
			if i > 0 { // the first warms the page cache
				s = append(s, gbps)
				if pid > 0 {
					c = append(c, (cpuTicks(pid)-t0)*10*(1024/mib))
				}
			}
		}
		series[eng.name] = s
		if len(c) > 0 {
			cpus[eng.name] = c
			cpu.Notes = append(cpu.Notes, fmt.Sprintf("%s: %s", eng.name, strings.TrimSpace(commName(pid))))
		} else {
			cpu.Notes = append(cpu.Notes, eng.name+": no process listens on the host's 127.0.0.1 for the port")
		}
		e.docker(eng, "rm", "-f", name)
	}
	setSeries(&r, series)
	setSeries(&cpu, cpus)
	r.Notes = append(r.Notes, "read 1 MiB at a time; on a loaded 2-core machine the rate follows the CPU other work leaves over; the CPU row is the driver's own cost")
	cpu.Notes = append(cpu.Notes, "utime+stime of the process that accepts on the host (clock ticks of 10 ms, so about ±40 ms per GiB): lodge's keeper-parent (rootlesskit's builtin driver, splice), Docker rootless's rootlesskit (then docker-proxy copies again inside, not counted), Podman's rootlessport")
	return []result{finish(r), finish(cpu)}
}

// download fetches url, waiting up to 30 s for the server to come up, and
// returns the rate in Gbit/s; fewer than want bytes is an error. It reads
// 1 MiB at a time: io.Copy into io.Discard reads 8 KiB at a time, and on
// this 2-core machine that reader alone took 3.6 times the CPU (2.5 s per
// 1.5 GiB against 0.7 s), more than the port driver it measures.
func download(url string, want int64) (float64, error) {
	deadline := time.Now().Add(30 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		t0 := time.Now()
		resp, err := http.Get(url)
		if err == nil && resp.StatusCode == http.StatusOK {
			n, err := io.CopyBuffer(discard{}, resp.Body, buf)
			resp.Body.Close()
			d := time.Since(t0)
			if err != nil || n != want {
				return 0, fmt.Errorf("downloaded %d of %d bytes: %v", n, want, err)
			}
			return float64(n*8) / d.Seconds() / 1e9, nil
		}
		if err == nil {
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s did not answer: %v", url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// discard is io.Discard without its ReadFrom, so io.CopyBuffer uses the
// buffer it is given.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// listener is the process holding the host's listening TCP socket on
// 127.0.0.1:port (the port driver's host half), or 0.
func listener(port int) int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	var inode string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 9 && f[1] == local && f[3] == "0A" { // LISTEN
			inode = f[9]
		}
	}
	if inode == "" {
		return 0
	}
	want := "socket:[" + inode + "]"
	pids, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range pids {
		if l, err := os.Readlink(fd); err == nil && l == want {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			return pid
		}
	}
	return 0
}

// cpuTicks is a process's user and system CPU, its reaped children's
// included, in clock ticks (1/100 s here).
func cpuTicks(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var t float64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		if i < len(f) {
			v, _ := strconv.ParseFloat(f[i], 64)
			t += v
		}
	}
	return t
}

func commName(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return string(b)
}

package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// publishedPort is TCP throughput through a published port: the host
// downloads a file that busybox httpd serves from a container on
// 127.0.0.1:PORT, on each engine in turn (lodge: rootlesskit's builtin
// port driver to the container's bridge address; Docker rootless and
// Podman: their defaults). Higher is better, so the ratio is lodge over
// the faster anchor's figure.
func publishedPort(e *env, reps int) []result {
	return []result{portThroughput(e, reps), uplinkThroughput(e, reps), networkStartCost(e, reps)}
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
	go srv.Serve(l)
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

func portThroughput(e *env, reps int) result {
	const mib = 256
	r := result{Figure: fmt.Sprintf("published port TCP, host downloads %d MiB", mib), Unit: "Gbit/s", HigherIsBetter: true}
	series := map[string]stats{}
	for _, eng := range e.engines {
		if eng.why != "" {
			continue
		}
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			r.Notes = append(r.Notes, err.Error())
			return r
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
		var s stats
		for i := 0; i < reps+1; i++ {
			gbps, err := download(url, mib<<20)
			if err != nil {
				r.Notes = append(r.Notes, eng.name+": "+err.Error())
				break
			}
			if i > 0 { // the first warms the page cache
				s = append(s, gbps)
			}
		}
		series[eng.name] = s
		e.docker(eng, "rm", "-f", name)
	}
	setSeries(&r, series)
	r = finish(r)
	return r
}

// download fetches url, waiting up to 30 s for the server to come up, and
// returns the rate in Gbit/s; fewer than want bytes is an error.
func download(url string, want int64) (float64, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		t0 := time.Now()
		resp, err := http.Get(url)
		if err == nil && resp.StatusCode == http.StatusOK {
			n, err := io.Copy(io.Discard, resp.Body)
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

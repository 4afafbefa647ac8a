package api

import (
	"bufio"
	"bytes"
	"expvar"
	"net/http/pprof"
	"os"
	"runtime"
	"strconv"
	"sync"
)

// The debug routes are always served: the socket reaches only its owner,
// who may read lodged's memory anyway, and a leak is best looked at in the
// daemon that has it, without a restart with other flags. dockerd serves
// the same two under /debug/ (with --debug).
//
//	/debug/vars       expvar's JSON: memstats, cmdline, and lodged's own
//	                  figures: goroutines, open_fds, rss_bytes
//	/debug/pprof/...  net/http/pprof: heap, goroutine, profile, trace...
//
// /debug/pprof/heap?gc=1 collects garbage before it answers; the figures
// in /debug/vars read after it are what lodged really keeps.
func (s *Server) addDebugRoutes() {
	publishFigures.Do(func() {
		expvar.Publish("goroutines", expvar.Func(func() any { return runtime.NumGoroutine() }))
		expvar.Publish("open_fds", expvar.Func(func() any { return openFDs() }))
		expvar.Publish("rss_bytes", expvar.Func(func() any { return rssBytes() }))
	})
	s.mux.Handle("GET /debug/vars", expvar.Handler())
	s.mux.HandleFunc("/debug/pprof/", pprof.Index)
	s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

var publishFigures sync.Once

// openFDs counts this process's open file descriptors (-1 when /proc is
// unreadable).
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents) - 1 // ReadDir's own
}

// rssBytes is the resident set size from /proc/self/status (-1 unknown).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) >= 2 && string(f[0]) == "VmRSS:" {
			kb, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

// Command critestnginx stands in for the nginx image critest's namespace
// and networking tests run: it names itself as nginx's master process
// does ("nginx: master process ..." in /proc/PID/cmdline, nginx as its
// command name), writes its pid to /var/run/nginx.pid and serves a main
// page on port 80.
package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
)

const title = "nginx: master process nginx -g daemon off;"

func main() {
	if !strings.HasPrefix(os.Args[0], "nginx: master process") {
		// Again under nginx's title: the kernel names the process after
		// the file (nginx), its cmdline after argv[0].
		self, err := os.Executable()
		if err == nil {
			err = syscall.Exec(self, []string{title}, os.Environ())
		}
		fmt.Fprintln(os.Stderr, "critestnginx:", err)
		os.Exit(1)
	}
	if err := os.WriteFile("/var/run/nginx.pid", []byte(fmt.Sprintln(os.Getpid())), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "critestnginx:", err)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "<h1>Welcome to nginx (lodge's critest stand-in)</h1>")
	})
	if err := http.ListenAndServe(":80", nil); err != nil {
		fmt.Fprintln(os.Stderr, "critestnginx:", err)
		os.Exit(1)
	}
}

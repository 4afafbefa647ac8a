package stats

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestParsePSOutput(t *testing.T) {
	out := "UID   PID  PPID C STIME TTY TIME     CMD\n" +
		"root  1    0    0 10:00 ?   00:00:01 /sbin/init splash\n" +
		"1000  42   1    0 10:01 ?   00:00:00 sleep 600 now\n" +
		"1000  -    -    0 10:01 ?   00:00:00 -\n" +
		"1000  43   42   0 10:01 ?   00:00:00 sh\n"
	resp, err := parsePSOutput([]byte(out), []int{42})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(resp.Titles, ",") != "UID,PID,PPID,C,STIME,TTY,TIME,CMD" {
		t.Errorf("titles %q", resp.Titles)
	}
	if len(resp.Processes) != 2 || resp.Processes[0][7] != "sleep 600 now" || resp.Processes[1][1] != "-" {
		t.Errorf("processes %q, want pid 42 with its whole command and its thread line", resp.Processes)
	}
	if _, err := parsePSOutput([]byte("USER COMMAND\nroot init\n"), []int{1}); err == nil {
		t.Errorf("ps output without a PID column was taken")
	}
}

func TestValidatePSArgs(t *testing.T) {
	for args, ok := range map[string]bool{"-ef": true, "aux": true, "-o pid,comm": true, "-o pid=PID": true, "-o user=PIDX": false} {
		if err := validatePSArgs(args); (err == nil) != ok {
			t.Errorf("validatePSArgs(%q) = %v", args, err)
		}
	}
}

// TestRunPSKeepsThePIDs: ps with -q lists the pids asked (this test's
// own), with the columns of the arguments.
func TestRunPSKeepsThePIDs(t *testing.T) {
	out, err := runPS(context.Background(), "-o pid,comm", []int{os.Getpid()})
	if err != nil {
		t.Fatalf("ps (procps) on this machine: %v", err)
	}
	resp, err := parsePSOutput(out, []int{os.Getpid()})
	if err != nil || len(resp.Processes) != 1 || resp.Processes[0][0] != strconv.Itoa(os.Getpid()) || strings.Join(resp.Titles, ",") != "PID,COMMAND" {
		t.Errorf("ps -o pid,comm of this process: %+v %v", resp, err)
	}
}

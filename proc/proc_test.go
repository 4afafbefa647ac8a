package proc

import (
	"os"
	"os/exec"
	"slices"
	"testing"

	"github.com/lodge-containers/lodge/internal/testgate"
)

func TestParseStatOddName(t *testing.T) {
	st, err := parseStat(42, []byte("42 (a) b (c)) S 7 42 42 0 -1"))
	if err != nil || st.PPID != 7 || st.State != 'S' {
		t.Errorf("parseStat = %+v, %v", st, err)
	}
	if _, err := parseStat(1, []byte("1 (x")); err == nil {
		t.Error("a stat line without ')' parsed")
	}
}

func TestDescendantsAndAlive(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 30 & wait")
	if err := cmd.Start(); err != nil {
		testgate.SkipOrFail(t, "no sh: %v", err)
	}
	defer cmd.Process.Kill()
	self := os.Getpid()
	var d []int
	for i := 0; i < 100 && len(d) < 2; i++ {
		d = Descendants(self)
		if len(d) < 2 {
			exec.Command("sleep", "0.01").Run()
		}
	}
	if !slices.Contains(d, cmd.Process.Pid) || len(d) < 2 {
		t.Fatalf("descendants of the test %v lack sh %d and its sleep", d, cmd.Process.Pid)
	}
	if !Alive(cmd.Process.Pid) {
		t.Error("a running child is not alive")
	}
	if StatusField(self, "VmRSS") == "" {
		t.Error("no VmRSS for this process")
	}
	if Cmdline(cmd.Process.Pid) != "sh -c sleep 30 & wait" {
		t.Errorf("cmdline %q", Cmdline(cmd.Process.Pid))
	}
}

func TestParseNetDev(t *testing.T) {
	in := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     120       2    0    0    0     0          0         0      120       2    0    0    0     0       0          0
  eth0: 1234567    890    1    2    0     0          0         0   765432     321    3    4    0     0       0          0
`
	got, err := parseNetDev(in)
	if err != nil {
		t.Fatal(err)
	}
	want := NetDev{RxBytes: 1234567, RxPackets: 890, RxErrors: 1, RxDropped: 2, TxBytes: 765432, TxPackets: 321, TxErrors: 3, TxDropped: 4}
	if len(got) != 2 || got["eth0"] != want || got["lo"].RxBytes != 120 {
		t.Errorf("parseNetDev: %+v", got)
	}
	if _, err := parseNetDev("eth0: 1 2 3\n"); err == nil {
		t.Error("a short line was accepted")
	}
}

package cri

import (
	"encoding/binary"
	"net"
	"os"
	"strings"
	"testing"
)

// Rows as a little-endian machine prints them (x86-64, arm64).
const (
	tcpTable = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 24 1 00000000dc0014f3 100 0 0 10 0                        
   1: 0100007F:A7F5 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12807216 2 00000000ba572ca3 100 0 0 10 0                  
   2: 0100007F:C41A 0100007F:A7F5 01 00000000:00000000 02:00000575 00000000 65534        0 12807343 2 0000000060953981 20 4 30 44 8                  
   3: 0100007F:C41B 0100007F:A7F5 06 00000000:00000000 03:00001744 00000000     0        0 0 3 0000000000000000
   4: 0100007F:A7F5 0100007F:C41A 01 00000000:00000000 00:00000000 00000000  1000        0 12807344 1 00000000a1b2c3d4 20 4 30 10 -1
   5: 6400A8C0:D431 0A00A8C0:0016 01 00000000:00000000 02:000A1F2B 00000000  1000        0 99102 2 00000000deadbeef 24 4 29 10 -1
`
	tcp6Table = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4410 1 00000000c0ffee00 100 0 0 10 0
   1: 00000000000000000000000001000000:B5E2 00000000000000000000000001000000:1F90 01 00000000:00000000 02:00000A3C 00000000     0        0 4477 2 00000000c0ffee01 20 4 30 10 -1
   2: 0000000000000000FFFF00000100007F:B5E3 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 4478 1 00000000c0ffee02 20 4 30 10 -1
   3: B80D0120000000000000000005000000:1F90 B80D0120000000000000000009000000:E0F1 01 00000000:00000000 00:00000000 00000000  1000        0 4479 1 00000000c0ffee03 20 4 30 10 -1
`
)

func littleEndian(t *testing.T) {
	t.Helper()
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], 1)
	if b[0] != 1 {
		t.Skip("the rows here are as a little-endian machine prints them")
	}
}

func TestParseTCPRow(t *testing.T) {
	littleEndian(t)
	for _, tc := range []struct {
		line, local, remote string
		state               uint8
		uid                 int
	}{
		{strings.Split(tcpTable, "\n")[2], "127.0.0.1:42997", "0.0.0.0:0", 0x0A, 1000},
		{strings.Split(tcpTable, "\n")[3], "127.0.0.1:50202", "127.0.0.1:42997", 1, 65534},
		{strings.Split(tcpTable, "\n")[6], "192.168.0.100:54321", "192.168.0.10:22", 1, 1000},
		{strings.Split(tcp6Table, "\n")[2], "[::1]:46562", "[::1]:8080", 1, 0},
		{strings.Split(tcp6Table, "\n")[3], "127.0.0.1:46563", "127.0.0.1:8080", 1, 1001},
		{strings.Split(tcp6Table, "\n")[4], "[2001:db8::5]:8080", "[2001:db8::9]:57585", 1, 1000},
	} {
		row, err := parseTCPRow(tc.line)
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if row.local.String() != tc.local || row.remote.String() != tc.remote || row.state != tc.state || row.uid != tc.uid {
			t.Errorf("%q: %s -> %s state %d uid %d; want %s -> %s state %d uid %d", tc.line,
				&row.local, &row.remote, row.state, row.uid, tc.local, tc.remote, tc.state, tc.uid)
		}
	}
	for _, bad := range []string{
		"",
		"   0: 0100007F:A7F5 00000000:0000 0A",
		"   0: 0100007:A7F5 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0",
		"   0: 0100007F:A7F5 00000000:0000 0A 00000000:00000000 00:00000000 00000000    -1",
		"   0: 0100007G:A7F5 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0",
		"   0: 0100007F:A7F5Z 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0",
	} {
		if row, err := parseTCPRow(bad); err == nil {
			t.Errorf("%q parsed as %+v", bad, row)
		}
	}
}

func TestFindTCPOwner(t *testing.T) {
	littleEndian(t)
	addr := func(s string) *net.TCPAddr {
		a, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		table, local, remote string
		uid                  int
		err                  string
	}{
		// The client's socket, not the server's accepted one (uid 1000)
		// with the same two addresses the other way round.
		{tcpTable, "127.0.0.1:50202", "127.0.0.1:42997", 65534, ""},
		{tcpTable, "127.0.0.1:42997", "127.0.0.1:50202", 1000, ""},
		// TIME_WAIT shows uid 0 whoever made it.
		{tcpTable, "127.0.0.1:50203", "127.0.0.1:42997", -1, "state 6"},
		{tcpTable, "127.0.0.1:50204", "127.0.0.1:42997", -1, "no such TCP socket"},
		{tcp6Table, "[::1]:46562", "[::1]:8080", 0, ""},
		// An IPv6 socket's IPv4-mapped addresses match Go's IPv4 ones.
		{tcp6Table, "127.0.0.1:46563", "127.0.0.1:8080", 1001, ""},
		{tcp6Table, "[::ffff:127.0.0.1]:46563", "[::ffff:127.0.0.1]:8080", 1001, ""},
		{tcp6Table, "[2001:db8::5]:8080", "[2001:db8::9]:57585", 1000, ""},
		{tcp6Table, "[2001:db8::5]:8080", "[2001:db8::8]:57585", -1, "no such TCP socket"},
	} {
		uid, err := findTCPOwner(strings.NewReader(tc.table), addr(tc.local), addr(tc.remote))
		if uid != tc.uid || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s -> %s: uid %d, %v; want %d, %q", tc.local, tc.remote, uid, err, tc.uid, tc.err)
		}
	}
}

// TestTCPPeerUID looks up the client of a real loopback connection, made
// by this process, with sock_diag and with /proc's tables.
func TestTCPPeerUID(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			host := "127.0.0.1:0"
			if network == "tcp6" {
				host = "[::1]:0"
			}
			l, err := net.Listen(network, host)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			c, err := net.Dial(network, l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sc, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			if uid, err := tcpPeerUID(sc); err != nil || uid != os.Geteuid() {
				t.Errorf("tcpPeerUID: %d, %v; want %d", uid, err, os.Geteuid())
			}
			if uid, err := procPeerUID(sc.RemoteAddr().(*net.TCPAddr), sc.LocalAddr().(*net.TCPAddr)); err != nil || uid != os.Geteuid() {
				t.Errorf("procPeerUID: %d, %v; want %d", uid, err, os.Geteuid())
			}
			// The server's own socket is not the client's.
			if uid, err := procPeerUID(sc.LocalAddr().(*net.TCPAddr), &net.TCPAddr{IP: net.IPv6loopback, Port: 1}); err == nil {
				t.Errorf("procPeerUID of no socket: %d", uid)
			}
		})
	}
}

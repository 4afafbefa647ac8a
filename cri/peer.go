package cri

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
)

// tcpPeerUID is the uid that owns the client's end of c, a TCP connection
// accepted by this process, as this process's user namespace sees it: the
// kernel maps the owner into the user namespace of whoever asks, so in
// lodged's namespace its own user is 0 and every unmapped host user is the
// overflow uid (65534). The client's socket is the one whose local address
// is c's remote address and whose remote address is c's local one; it must
// be in this process's network namespace, so a peer on another machine is
// never found, and is refused.
//
// It asks sock_diag (an exact look-up), then reads /proc's tables if
// sock_diag cannot answer (a kernel without inet_diag).
func tcpPeerUID(c net.Conn) (int, error) {
	local, lok := c.LocalAddr().(*net.TCPAddr)
	remote, rok := c.RemoteAddr().(*net.TCPAddr)
	if !lok || !rok {
		return -1, fmt.Errorf("not a TCP connection: %s", c.RemoteAddr())
	}
	s, nlErr := netlink.SocketGet(remote, local)
	if nlErr == nil {
		if s.ID.SourcePort == uint16(remote.Port) && s.ID.DestinationPort == uint16(local.Port) &&
			s.ID.Source.Equal(remote.IP) && s.ID.Destination.Equal(local.IP) {
			if !fullSocket(s.State) {
				return -1, fmt.Errorf("the client's socket %s is in TCP state %d, which has no owner", remote, s.State)
			}
			return int(s.UID), nil
		}
		nlErr = errors.New("sock_diag answered another socket")
	}
	uid, err := procPeerUID(remote, local)
	if err != nil {
		return -1, fmt.Errorf("%w (sock_diag: %v)", err, nlErr)
	}
	return uid, nil
}

// procPeerUID finds the socket from local to remote in this thread's
// network namespace's /proc tables, IPv4 then IPv6 (an IPv6 socket may
// carry IPv4-mapped addresses).
func procPeerUID(local, remote *net.TCPAddr) (int, error) {
	for _, name := range []string{"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"} {
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6 in this kernel
		}
		if err != nil {
			return -1, err
		}
		uid, err := findTCPOwner(f, local, remote)
		f.Close()
		if err == nil || !errors.Is(err, errNoSocket) {
			return uid, err
		}
	}
	return -1, fmt.Errorf("%w from %s to %s", errNoSocket, local, remote)
}

var errNoSocket = errors.New("no such TCP socket")

// findTCPOwner reads a /proc/net/tcp or tcp6 table for the row of the
// socket from local to remote, and answers its uid column.
func findTCPOwner(r io.Reader, local, remote *net.TCPAddr) (int, error) {
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		if first { // the header
			first = false
			continue
		}
		row, err := parseTCPRow(sc.Text())
		if err != nil {
			return -1, err
		}
		if row.local.Port != local.Port || row.remote.Port != remote.Port ||
			!row.local.IP.Equal(local.IP) || !row.remote.IP.Equal(remote.IP) {
			continue
		}
		if !fullSocket(row.state) {
			return -1, fmt.Errorf("the socket from %s to %s is in TCP state %d, which has no owner", local, remote, row.state)
		}
		return row.uid, nil
	}
	if err := sc.Err(); err != nil {
		return -1, err
	}
	return -1, errNoSocket
}

// tcpRow is what lodge reads of a row of /proc/net/tcp or tcp6.
type tcpRow struct {
	local, remote net.TCPAddr
	state         uint8
	uid           int
}

// parseTCPRow parses one row of /proc/net/tcp or tcp6 (the kernel's
// tcp4_seq_show and tcp6_seq_show):
//
//	sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt   uid  timeout inode ...
//	 0: 0100007F:1F90 0100007F:A2C4 01 00000000:00000000 00:00000000 00000000  1000        0 54321 ...
func parseTCPRow(line string) (tcpRow, error) {
	f := strings.Fields(line)
	if len(f) < 8 || !strings.HasSuffix(f[0], ":") {
		return tcpRow{}, fmt.Errorf("a TCP table row with %d fields: %q", len(f), line)
	}
	var row tcpRow
	var err error
	if row.local, err = parseTCPAddr(f[1]); err != nil {
		return tcpRow{}, err
	}
	if row.remote, err = parseTCPAddr(f[2]); err != nil {
		return tcpRow{}, err
	}
	st, err := strconv.ParseUint(f[3], 16, 8)
	if err != nil {
		return tcpRow{}, fmt.Errorf("TCP state %q: %w", f[3], err)
	}
	row.state = uint8(st)
	uid, err := strconv.ParseUint(f[7], 10, 32)
	if err != nil {
		return tcpRow{}, fmt.Errorf("uid %q: %w", f[7], err)
	}
	row.uid = int(uid)
	return row, nil
}

// parseTCPAddr parses ADDR:PORT of a TCP table: the address is the bytes
// of the in-memory address printed as 32-bit words in the machine's own
// order (%08X each; so 127.0.0.1 is 0100007F on little-endian machines),
// the port a number in hex.
func parseTCPAddr(s string) (net.TCPAddr, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok || (len(a) != 8 && len(a) != 32) {
		return net.TCPAddr{}, fmt.Errorf("TCP table address %q", s)
	}
	words, err := hex.DecodeString(a)
	if err != nil {
		return net.TCPAddr{}, fmt.Errorf("TCP table address %q: %w", s, err)
	}
	ip := make(net.IP, len(words))
	for i := 0; i < len(words); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(words[i:]))
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return net.TCPAddr{}, fmt.Errorf("TCP table port %q: %w", s, err)
	}
	return net.TCPAddr{IP: ip, Port: int(port)}, nil
}

// fullSocket reports whether a socket in TCP state st has an owner: a
// TIME_WAIT or request socket (and a listener, never a client) shows uid 0
// whoever made it, which in lodged's namespace is its own user.
func fullSocket(st uint8) bool {
	switch st {
	case 1, // ESTABLISHED
		4,  // FIN_WAIT1
		5,  // FIN_WAIT2
		7,  // CLOSE
		8,  // CLOSE_WAIT
		9,  // LAST_ACK
		11: // CLOSING
		return true
	}
	return false
}

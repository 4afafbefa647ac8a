// Command udpecho answers every UDP datagram on the port it is given with
// the same bytes: busybox has no UDP server, and the published-port tests
// need one inside a container. It is built static and bind-mounted in.
package main

import (
	"net"
	"os"
)

func main() {
	c, err := net.ListenPacket("udp", ":"+os.Args[1])
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	buf := make([]byte, 65536)
	for {
		n, addr, err := c.ReadFrom(buf)
		if err != nil {
			os.Exit(1)
		}
		c.WriteTo(buf[:n], addr)
	}
}

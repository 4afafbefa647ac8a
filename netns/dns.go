package netns

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Resolver is the embedded name server of user-defined networks, as
// Docker's 127.0.0.11 and Podman's aardvark-dns are: one listener (UDP and
// TCP port 53) on each network's gateway address inside the uplink
// namespace. It answers A queries for the names its Lookup knows
// (containers' names, aliases, short ids) and forwards everything else to
// the host's resolvers. The forwarding sockets are lodged's own, in the
// host's network namespace, so a host resolver on loopback (systemd-resolved's
// 127.0.0.53) is reachable as it is. Safe for concurrent use.
type Resolver struct {
	uplinkNS string

	// upstreams lists the resolvers to forward to ("ip" or "ip:port").
	upstreams func() []string

	mu      sync.Mutex
	lookup  func(gateway, client net.IP, name string) []net.IP
	servers map[string][]*dns.Server
}

// NewResolver makes a resolver for networks in the namespace at uplinkNS.
func NewResolver(uplinkNS string) *Resolver {
	return &Resolver{uplinkNS: uplinkNS, upstreams: hostResolvers, servers: map[string][]*dns.Server{}}
}

// SetLookup sets the function that knows the names on the network whose
// gateway is asked, as the asking address (client) sees them: a link's
// alias is a name for its own container only.
func (r *Resolver) SetLookup(f func(gateway, client net.IP, name string) []net.IP) {
	r.mu.Lock()
	r.lookup = f
	r.mu.Unlock()
}

// Serve starts answering on gateway:53. A second call for the same
// gateway does nothing.
func (r *Resolver) Serve(gateway net.IP) error {
	key := gateway.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.servers[key]; ok {
		return nil
	}
	addr := net.JoinHostPort(key, "53")
	var pc net.PacketConn
	var l net.Listener
	err := Do(r.uplinkNS, func() (err error) {
		if pc, err = net.ListenPacket("udp4", addr); err != nil {
			return err
		}
		if l, err = net.Listen("tcp4", addr); err != nil {
			_ = pc.Close() // the Listen error is the one to report
		}
		return err
	})
	if err != nil {
		return err
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) { r.answer(gateway, w, q) })
	srvs := []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}}
	for _, s := range srvs {
		go func() { _ = s.ActivateAndServe() }() // returns when Shutdown stops it
	}
	r.servers[key] = srvs
	return nil
}

// Stop ends the listeners on gateway.
func (r *Resolver) Stop(gateway net.IP) {
	r.mu.Lock()
	srvs := r.servers[gateway.String()]
	delete(r.servers, gateway.String())
	r.mu.Unlock()
	for _, s := range srvs {
		_ = s.Shutdown() // fails only on a server not running, which is what is wanted
	}
}

func (r *Resolver) answer(gateway net.IP, w dns.ResponseWriter, q *dns.Msg) {
	if len(q.Question) == 1 {
		qu := q.Question[0]
		name := strings.ToLower(strings.TrimSuffix(qu.Name, "."))
		r.mu.Lock()
		lookup := r.lookup
		r.mu.Unlock()
		var ips []net.IP
		if lookup != nil {
			ips = lookup(gateway, clientIP(w.RemoteAddr()), name)
		}
		if len(ips) > 0 {
			m := new(dns.Msg)
			m.SetReply(q)
			m.Authoritative = true
			for _, ip := range ips {
				hdr := dns.RR_Header{Name: qu.Name, Class: dns.ClassINET, Ttl: 600}
				switch ip4 := ip.To4(); {
				case ip4 != nil && (qu.Qtype == dns.TypeA || qu.Qtype == dns.TypeANY):
					hdr.Rrtype = dns.TypeA
					m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: ip4})
				case ip4 == nil && (qu.Qtype == dns.TypeAAAA || qu.Qtype == dns.TypeANY):
					hdr.Rrtype = dns.TypeAAAA
					m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip})
				}
			}
			_ = w.WriteMsg(m) // a reply lost on the way is retried by the resolver
			return
		}
	}
	_ = w.WriteMsg(forward(q, w.RemoteAddr().Network(), r.upstreams()))
}

// clientIP is the address a query came from.
func clientIP(a net.Addr) net.IP {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.IP
	case *net.TCPAddr:
		return a.IP
	}
	return nil
}

// forward asks the upstream resolvers in turn; SERVFAIL when none answers.
func forward(q *dns.Msg, network string, upstreams []string) *dns.Msg {
	c := &dns.Client{Net: network, Timeout: 3 * time.Second}
	if network != "tcp" {
		c.Net = "udp"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range upstreams {
		if _, _, err := net.SplitHostPort(s); err != nil {
			s = net.JoinHostPort(s, "53")
		}
		if m, _, err := c.ExchangeContext(ctx, q, s); err == nil && m != nil {
			return m
		}
	}
	m := new(dns.Msg)
	m.SetRcode(q, dns.RcodeServerFailure)
	return m
}

// hostResolvers reads the host's name servers from /etc/resolv.conf.
func hostResolvers() []string {
	return resolvConfServers("/etc/resolv.conf")
}

func resolvConfServers(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "nameserver" {
			out = append(out, f[1])
		}
	}
	return out
}

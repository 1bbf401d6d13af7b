package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// The tests run on loopback: 127.0.0.0/8 is all local, so "containers" are
// client sockets bound to 127.0.1.x and the server listens on 127.0.0.x,
// each on a port picked free for the test.

func freePort(t *testing.T) uint16 {
	t.Helper()
	for i := 0; i < 20; i++ {
		l, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := uint16(l.LocalAddr().(*net.UDPAddr).Port)
		l.Close()
		if tl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			tl.Close()
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

type fixture struct {
	dir  string
	port uint16
	srv  *Server
}

func start(t *testing.T, files map[string]string, mod func(*Config)) *fixture {
	t.Helper()
	if c, err := net.Dial("udp", "127.0.0.1:9"); err != nil {
		t.Skipf("loopback is not usable in this network namespace (%v); these tests talk over 127.0.0.0/8", err)
	} else if _, err := c.Write([]byte{0}); err != nil {
		c.Close()
		t.Skipf("loopback is not usable in this network namespace (%v)", err)
	} else {
		c.Close()
	}
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{dir: dir, port: freePort(t)}
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(resolv, []byte("# none\n"), 0o644)
	cfg := Config{Dir: dir, Port: f.port, ResolvConf: resolv, Timeout: 2 * time.Second, ServeHost: true}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	f.srv = srv
	return f
}

// query asks server address srv (ip) from source src over netw.
func (f *fixture) query(t *testing.T, src, srv, netw, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), qtype)
	return f.exchange(t, src, srv, netw, m)
}

func (f *fixture) exchange(t *testing.T, src, srv, netw string, m *mdns.Msg) *mdns.Msg {
	t.Helper()
	c := &mdns.Client{Net: netw, Timeout: 3 * time.Second}
	if netw == "tcp" {
		c.Dialer = &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 3 * time.Second}
	} else {
		c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}, Timeout: 3 * time.Second}
	}
	r, _, err := c.Exchange(m, fmt.Sprintf("%s:%d", srv, f.port))
	if err != nil {
		t.Fatalf("query %s from %s over %s: %v", m.Question[0].Name, src, netw, err)
	}
	return r
}

func addrs(r *mdns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		switch v := rr.(type) {
		case *mdns.A:
			out = append(out, v.A.String())
		case *mdns.AAAA:
			out = append(out, v.AAAA.String())
		case *mdns.PTR:
			out = append(out, v.Ptr)
		}
	}
	return out
}

// Two networks: net1 (listener 127.0.0.1) with web and db, net2 (listener
// 127.0.0.2) with api and db2; "multi" is on both.
var twoNets = map[string]string{
	"net1": "127.0.0.1\nc1 127.0.1.1  web,www\nc2 127.0.1.2 fd00::2 db\nc9 127.0.1.9  multi\n",
	"net2": "127.0.0.2\nc3 127.0.2.3  api\nc9 127.0.2.9  multi\n",
}

func TestAnswersNamesAliasesCaseAndDomain(t *testing.T) {
	f := start(t, twoNets, nil)
	for _, name := range []string{"web", "WWW", "web.dns.podman", "Web.DNS.Podman."} {
		r := f.query(t, "127.0.1.2", "127.0.0.1", "udp", name, mdns.TypeA)
		if got := addrs(r); r.Rcode != mdns.RcodeSuccess || len(got) != 1 || got[0] != "127.0.1.1" {
			t.Errorf("%s: rcode %d answers %v", name, r.Rcode, got)
		}
		if r.Answer[0].Header().Name != mdns.Fqdn(name) || r.Answer[0].Header().Ttl != TTL {
			t.Errorf("%s: owner %q ttl %d", name, r.Answer[0].Header().Name, r.Answer[0].Header().Ttl)
		}
	}
	if got := addrs(f.query(t, "127.0.1.1", "127.0.0.1", "udp", "db", mdns.TypeAAAA)); len(got) != 1 || got[0] != "fd00::2" {
		t.Errorf("AAAA db: %v", got)
	}
	// A name with no address of the family: NOERROR, no answers.
	if r := f.query(t, "127.0.1.1", "127.0.0.1", "udp", "web", mdns.TypeAAAA); r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("AAAA web: %d %v", r.Rcode, r.Answer)
	}
	// A container on both networks sees both of its peers' addresses.
	if got := addrs(f.query(t, "127.0.1.9", "127.0.0.1", "udp", "multi", mdns.TypeA)); len(got) != 2 {
		t.Errorf("multi from a container on both networks: %v", got)
	}
	// TCP works too (aardvark 1.4 has no TCP).
	if got := addrs(f.query(t, "127.0.1.2", "127.0.0.1", "tcp", "web", mdns.TypeA)); len(got) != 1 {
		t.Errorf("tcp: %v", got)
	}
}

func TestNetworksAreIsolated(t *testing.T) {
	f := start(t, twoNets, nil)
	// A container on net1 does not see a name only on net2 at its own
	// listener, and is refused at net2's listener.
	if r := f.query(t, "127.0.1.1", "127.0.0.1", "udp", "api.dns.podman", mdns.TypeA); r.Rcode != mdns.RcodeNameError || len(r.Answer) != 0 {
		t.Errorf("net1 container resolved net2's api: %d %v", r.Rcode, addrs(r))
	}
	if r := f.query(t, "127.0.1.1", "127.0.0.2", "udp", "api.dns.podman", mdns.TypeA); r.Rcode != mdns.RcodeRefused || len(r.Answer) != 0 {
		t.Errorf("net1 container at net2's listener: %d %v, want REFUSED", r.Rcode, addrs(r))
	}
	if got := addrs(f.query(t, "127.0.2.3", "127.0.0.2", "udp", "api", mdns.TypeA)); len(got) != 1 {
		t.Errorf("api from its own network: %v", got)
	}
	// The host gets the listener's network.
	if got := addrs(f.query(t, "127.0.0.9", "127.0.0.2", "udp", "api", mdns.TypeA)); len(got) != 1 {
		t.Errorf("api from the host at net2's listener: %v", got)
	}
}

func TestPTR(t *testing.T) {
	f := start(t, twoNets, nil)
	r := f.query(t, "127.0.1.2", "127.0.0.1", "udp", "1.1.0.127.in-addr.arpa", mdns.TypePTR)
	got := addrs(r)
	if len(got) != 2 || got[0] != "web.dns.podman." || got[1] != "www.dns.podman." {
		t.Fatalf("PTR: %v", got)
	}
	if r.Answer[0].Header().Name != "1.1.0.127.in-addr.arpa." {
		t.Errorf("PTR owner %q (aardvark 1.4 answers with owner \".\")", r.Answer[0].Header().Name)
	}
	v6 := "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa"
	if got := addrs(f.query(t, "127.0.1.1", "127.0.0.1", "udp", v6, mdns.TypePTR)); len(got) != 1 || got[0] != "db.dns.podman." {
		t.Errorf("PTR v6: %v", got)
	}
}

func TestTruncationAndEDNS(t *testing.T) {
	var b strings.Builder
	b.WriteString("127.0.0.1\n")
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&b, "id%d 127.0.3.%d  big\n", i, i+1)
	}
	f := start(t, map[string]string{"net1": b.String()}, nil)
	r := f.query(t, "127.0.0.9", "127.0.0.1", "udp", "big", mdns.TypeA)
	if !r.Truncated || len(r.Answer) >= 60 {
		t.Errorf("60 answers over plain UDP: truncated=%v answers=%d", r.Truncated, len(r.Answer))
	}
	m := new(mdns.Msg)
	m.SetQuestion("big.", mdns.TypeA)
	m.SetEdns0(4096, false)
	r = f.exchange(t, "127.0.0.9", "127.0.0.1", "udp", m)
	if r.Truncated || len(r.Answer) != 60 || r.IsEdns0() == nil {
		t.Errorf("with EDNS0 4096: truncated=%v answers=%d edns=%v", r.Truncated, len(r.Answer), r.IsEdns0() != nil)
	}
	if r := f.query(t, "127.0.0.9", "127.0.0.1", "tcp", "big", mdns.TypeA); r.Truncated || len(r.Answer) != 60 {
		t.Errorf("tcp: truncated=%v answers=%d", r.Truncated, len(r.Answer))
	}
}

// upstreamServer runs a DNS server on addr:port answering name with ip.
func upstreamServer(t *testing.T, addr string, port uint16, h mdns.HandlerFunc) {
	t.Helper()
	pc, err := net.ListenPacket("udp", fmt.Sprintf("%s:%d", addr, port))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", addr, port))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*mdns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		go s.ActivateAndServe()
		t.Cleanup(func() { s.Shutdown() })
	}
}

func fixedAnswer(ip string, hits *atomic.Int32) mdns.HandlerFunc {
	return func(w mdns.ResponseWriter, q *mdns.Msg) {
		if hits != nil {
			hits.Add(1)
		}
		r := new(mdns.Msg)
		r.SetReply(q)
		r.Answer = append(r.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: q.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: net.ParseIP(ip)})
		w.WriteMsg(r)
	}
}

func TestForwardingPrecedenceFailoverAndServfail(t *testing.T) {
	up := freePort(t)
	var hitsA, hitsB, hitsC atomic.Int32
	upstreamServer(t, "127.0.5.1", up, fixedAnswer("198.18.5.1", &hitsA)) // network's server
	upstreamServer(t, "127.0.5.2", up, fixedAnswer("198.18.5.2", &hitsB)) // container's server
	upstreamServer(t, "127.0.5.3", up, fixedAnswer("198.18.5.3", &hitsC)) // host resolv.conf
	files := map[string]string{
		"net1":    "127.0.0.1 127.0.5.9,127.0.5.1\nc1 127.0.1.1  plain\nc2 127.0.1.2  own 127.0.5.2\n",
		"int%int": "127.0.0.3\nc4 127.0.4.4  secret\n",
	}
	var resolv string
	f := start(t, files, func(c *Config) {
		c.UpstreamPort = up
		c.Timeout = 2 * time.Second
		resolv = c.ResolvConf
	})
	os.WriteFile(resolv, []byte("nameserver 127.0.5.3\n"), 0o644)

	// Network servers, with failover past the dead first one (127.0.5.9).
	if got := addrs(f.query(t, "127.0.1.1", "127.0.0.1", "udp", "example.test", mdns.TypeA)); len(got) != 1 || got[0] != "198.18.5.1" {
		t.Errorf("network upstream with failover: %v", got)
	}
	// The container's own servers win.
	if got := addrs(f.query(t, "127.0.1.2", "127.0.0.1", "udp", "example.test", mdns.TypeA)); len(got) != 1 || got[0] != "198.18.5.2" {
		t.Errorf("container upstream: %v", got)
	}
	// Single-label names are forwarded too (aardvark 1.4 does not).
	if got := addrs(f.query(t, "127.0.1.1", "127.0.0.1", "tcp", "single", mdns.TypeA)); len(got) != 1 {
		t.Errorf("single-label name: %v", got)
	}
	// The host (unknown source) at a network without servers: resolv.conf.
	f2 := start(t, map[string]string{"n": "127.0.0.4\n"}, func(c *Config) { c.UpstreamPort = up; c.ResolvConf = resolv })
	if got := addrs(f2.query(t, "127.0.0.9", "127.0.0.4", "udp", "host.test", mdns.TypeA)); len(got) != 1 || got[0] != "198.18.5.3" {
		t.Errorf("resolv.conf upstream: %v", got)
	}
	// resolv.conf changes are picked up.
	time.Sleep(1100 * time.Millisecond)
	os.WriteFile(resolv, []byte("nameserver 127.0.5.1\n"), 0o644)
	time.Sleep(1100 * time.Millisecond)
	if got := addrs(f2.query(t, "127.0.0.9", "127.0.0.4", "udp", "host2.test", mdns.TypeA)); len(got) != 1 || got[0] != "198.18.5.1" {
		t.Errorf("after resolv.conf changed: %v", got)
	}
	// Internal networks never forward.
	before := hitsA.Load() + hitsB.Load() + hitsC.Load()
	if r := f.query(t, "127.0.4.4", "127.0.0.3", "udp", "example.test", mdns.TypeA); r.Rcode != mdns.RcodeNameError {
		t.Errorf("internal network forwarded: rcode %d", r.Rcode)
	}
	if after := hitsA.Load() + hitsB.Load() + hitsC.Load(); after != before {
		t.Errorf("an upstream was asked for an internal network's query")
	}
	// No upstream answers: SERVFAIL.
	f3 := start(t, map[string]string{"n": "127.0.0.5 127.0.5.8\n"}, func(c *Config) { c.UpstreamPort = up; c.Timeout = 600 * time.Millisecond })
	if r := f3.query(t, "127.0.0.9", "127.0.0.5", "udp", "x.test", mdns.TypeA); r.Rcode != mdns.RcodeServerFailure {
		t.Errorf("dead upstream: rcode %d, want SERVFAIL", r.Rcode)
	}
}

func TestForwardTCPFallbackOnTruncation(t *testing.T) {
	up := freePort(t)
	h := func(w mdns.ResponseWriter, q *mdns.Msg) {
		r := new(mdns.Msg)
		r.SetReply(q)
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			r.Truncated = true
		} else {
			for i := 0; i < 40; i++ {
				r.Answer = append(r.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: q.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: net.IPv4(198, 18, 6, byte(i))})
			}
		}
		w.WriteMsg(r)
	}
	upstreamServer(t, "127.0.6.1", up, h)
	f := start(t, map[string]string{"n": "127.0.0.1 127.0.6.1\n"}, func(c *Config) { c.UpstreamPort = up })
	if r := f.query(t, "127.0.0.9", "127.0.0.1", "tcp", "many.test", mdns.TypeA); len(r.Answer) != 40 {
		t.Errorf("want 40 answers fetched over TCP from upstream, got %d", len(r.Answer))
	}
}

func TestReloadUnderLoadLosesNoQuery(t *testing.T) {
	f := start(t, twoNets, nil)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var failures, total atomic.Int32
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &mdns.Client{Net: "udp", Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP("127.0.1.2")}}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				m := new(mdns.Msg)
				m.SetQuestion("web.", mdns.TypeA)
				r, _, err := c.Exchange(m, fmt.Sprintf("127.0.0.1:%d", f.port))
				total.Add(1)
				if err != nil || len(r.Answer) != 1 {
					failures.Add(1)
				}
			}
		}()
	}
	// 50 reloads, adding and removing a third network each time.
	for i := 0; i < 50; i++ {
		p := filepath.Join(f.dir, "net3")
		if i%2 == 0 {
			os.WriteFile(p, []byte("127.0.0.3\nc7 127.0.7.7  x\n"), 0o644)
		} else {
			os.Remove(p)
		}
		if _, err := f.srv.Reload(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failures.Load() != 0 || total.Load() < 50 {
		t.Errorf("%d of %d queries failed during reloads", failures.Load(), total.Load())
	}
}

func TestMalformedFileDoesNotTakeOthersDown(t *testing.T) {
	files := map[string]string{"good": "127.0.0.1\nc1 127.0.1.1  web\n", "bad": "127.0.0.2\nc2 not-an-ip  x\n"}
	f := start(t, files, nil)
	snap := f.srv.Snapshot()
	if len(snap.Errors) != 1 || !strings.Contains(snap.Errors[0].Error(), "bad:2:") {
		t.Errorf("want one error naming bad:2, got %v", snap.Errors)
	}
	if got := addrs(f.query(t, "127.0.0.9", "127.0.0.1", "udp", "web", mdns.TypeA)); len(got) != 1 {
		t.Errorf("good network not served: %v", got)
	}
}

func TestFloodFromOneSourceDoesNotStarveOthers(t *testing.T) {
	up := freePort(t)
	slow := func(w mdns.ResponseWriter, q *mdns.Msg) {
		time.Sleep(300 * time.Millisecond)
		fixedAnswer("198.18.7.1", nil)(w, q)
	}
	upstreamServer(t, "127.0.7.1", up, slow)
	f := start(t, map[string]string{"n": "127.0.0.1 127.0.7.1\nc1 127.0.1.1  a\nc2 127.0.1.2  b\n"}, func(c *Config) {
		c.UpstreamPort = up
		c.MaxInflightPerSource = 8
	})
	// The flooder keeps 64 forwarded queries in flight.
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.1.1")})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to := &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: int(f.port)}
	for i := 0; i < 64; i++ {
		m := new(mdns.Msg)
		m.SetQuestion(fmt.Sprintf("flood%d.test.", i), mdns.TypeA)
		b, _ := m.Pack()
		conn.WriteToUDP(b, to)
	}
	// Another container still gets both local and forwarded answers.
	start := time.Now()
	if got := addrs(f.query(t, "127.0.1.2", "127.0.0.1", "udp", "a", mdns.TypeA)); len(got) != 1 {
		t.Errorf("local answer during flood: %v", got)
	}
	if got := addrs(f.query(t, "127.0.1.2", "127.0.0.1", "udp", "other.test", mdns.TypeA)); len(got) != 1 {
		t.Errorf("forwarded answer during flood: %v", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("other container waited %v", d)
	}
	// The flooder is told SERVFAIL beyond its share instead of queueing.
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	servfail := 0
	buf := make([]byte, 1500)
	for i := 0; i < 64; i++ {
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		m := new(mdns.Msg)
		if m.Unpack(buf[:n]) == nil && m.Rcode == mdns.RcodeServerFailure {
			servfail++
		}
	}
	if servfail < 64-8-8 {
		t.Errorf("flooder got %d SERVFAILs, want most of its 64 queries refused", servfail)
	}
	_ = context.Background
	_ = netip.Addr{}
}

// A bind address that cannot be bound is named once in the error (the
// socket error already carries it; aardvark-dns 2.x prints it so).
func TestBindErrorNamesTheAddressOnce(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "net1"), []byte("198.18.255.254\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Dir: dir, Port: freePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	_, err = srv.Reload()
	if err == nil {
		t.Fatal("binding 198.18.255.254, an address of no interface, succeeded")
	}
	if n := strings.Count(err.Error(), "198.18.255.254"); n != 1 {
		t.Errorf("error names the address %d times: %v", n, err)
	}
}

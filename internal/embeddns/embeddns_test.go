package embeddns

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// upstream is a stand-in for the DNS server of one network: it knows
// some names and says NXDOMAIN for the rest, and counts queries.
func upstream(t *testing.T, names map[string]string) (netip.AddrPort, *atomic.Int32) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	count := new(atomic.Int32)
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
		count.Add(1)
		r := new(mdns.Msg)
		r.SetReply(q)
		if ip, ok := names[q.Question[0].Name]; ok {
			rr, _ := mdns.NewRR(q.Question[0].Name + " 60 IN A " + ip)
			r.Answer = append(r.Answer, rr)
		} else {
			r.Rcode = mdns.RcodeNameError
		}
		_ = w.WriteMsg(r)
	})
	for _, s := range []*mdns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		go func() { _ = s.ActivateAndServe() }()
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return netip.MustParseAddrPort(pc.LocalAddr().String()), count
}

func TestForwarding(t *testing.T) {
	a, ca := upstream(t, map[string]string{"web.": "198.18.1.2", "example.com.": "198.18.9.9"})
	b, cb := upstream(t, map[string]string{"db.": "198.18.2.3", "db.dns.podman.": "198.18.2.3"})
	dead := netip.MustParseAddrPort("127.0.0.1:1") // nothing listens: the query fails there
	s, err := New(Config{Upstreams: []netip.AddrPort{a, b}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	ln, _ := net.Listen("tcp", pc.LocalAddr().String())
	s.Serve(pc, ln)
	defer s.Close()
	ask := func(proto, name string) *mdns.Msg {
		t.Helper()
		c := &mdns.Client{Net: proto, Timeout: 3 * time.Second}
		q := new(mdns.Msg)
		q.SetQuestion(name, mdns.TypeA)
		r, _, err := c.Exchange(q, pc.LocalAddr().String())
		if err != nil {
			t.Fatalf("%s %s: %v", proto, name, err)
		}
		return r
	}
	for _, tc := range []struct {
		proto, name, want string
		rcode             int
	}{
		{"udp", "web.", "198.18.1.2", mdns.RcodeSuccess},
		{"udp", "db.", "198.18.2.3", mdns.RcodeSuccess},            // second network
		{"tcp", "db.dns.podman.", "198.18.2.3", mdns.RcodeSuccess}, // second network, over TCP
		{"udp", "example.com.", "198.18.9.9", mdns.RcodeSuccess},
		{"udp", "nosuch.example.org.", "", mdns.RcodeNameError},
	} {
		r := ask(tc.proto, tc.name)
		if r.Rcode != tc.rcode {
			t.Errorf("%s: rcode %d, want %d", tc.name, r.Rcode, tc.rcode)
			continue
		}
		if tc.want != "" && (len(r.Answer) != 1 || r.Answer[0].(*mdns.A).A.String() != tc.want) {
			t.Errorf("%s: answer %v, want %s", tc.name, r.Answer, tc.want)
		}
	}
	// A public name the first network does not know is not asked again of the second.
	before := cb.Load()
	ask("udp", "other.example.net.")
	if cb.Load() != before {
		t.Errorf("a dotted public name went to the second network too")
	}
	if ca.Load() == 0 {
		t.Error("first upstream never asked")
	}

	s2, _ := New(Config{Upstreams: []netip.AddrPort{dead, a}, Timeout: 300 * time.Millisecond})
	r, err := s2.Resolve(context.Background(), "tcp", func() *mdns.Msg { q := new(mdns.Msg); q.SetQuestion("web.", mdns.TypeA); return q }())
	if err != nil || len(r.Answer) != 1 {
		t.Fatalf("failing first upstream: %v %v", r, err)
	}
	s3, _ := New(Config{Upstreams: []netip.AddrPort{dead}, Timeout: 300 * time.Millisecond})
	pc3, _ := net.ListenPacket("udp", "127.0.0.1:0")
	ln3, _ := net.Listen("tcp", pc3.LocalAddr().String())
	s3.Serve(pc3, ln3)
	defer s3.Close()
	c := &mdns.Client{Net: "tcp", Timeout: 3 * time.Second}
	q := new(mdns.Msg)
	q.SetQuestion("web.", mdns.TypeA)
	if r, _, err := c.Exchange(q, pc3.LocalAddr().String()); err != nil || r.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("all upstreams down: %v %v, want SERVFAIL", r, err)
	}
}

func TestNoUpstreams(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("accepted no upstreams")
	}
}

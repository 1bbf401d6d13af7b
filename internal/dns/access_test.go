package dns

import (
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/berthnet/berth/internal/aardvarkconf"
)

// fakeWriter is a ResponseWriter with chosen addresses that keeps the
// reply, so ServeDNS can be asked from any source without sockets.
type fakeWriter struct {
	mdns.ResponseWriter
	local, remote net.Addr
	reply         *mdns.Msg
}

func (w *fakeWriter) LocalAddr() net.Addr         { return w.local }
func (w *fakeWriter) RemoteAddr() net.Addr        { return w.remote }
func (w *fakeWriter) WriteMsg(m *mdns.Msg) error  { w.reply = m; return nil }
func (w *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }

// serveFrom runs one query through the handler as if src had sent it to
// local over UDP.
func serveFrom(srv *Server, src, local string, q *mdns.Msg) *mdns.Msg {
	w := &fakeWriter{
		local:  &net.UDPAddr{IP: net.ParseIP(local), Port: 53},
		remote: &net.UDPAddr{IP: net.ParseIP(src), Port: 40000},
	}
	srv.ServeDNS(w, q)
	return w.reply
}

func question(name string, qtype uint16) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), qtype)
	return m
}

// newHandler builds a server on files without listening, its upstream
// counting the queries it gets.
func newHandler(t *testing.T, files map[string]string, serveHost bool) (*Server, *atomic.Int32) {
	t.Helper()
	up := freePort(t)
	var hits atomic.Int32
	upstreamServer(t, "127.0.8.1", up, fixedAnswer("198.18.8.1", &hits))
	srv, err := New(Config{Dir: t.TempDir(), UpstreamPort: up, ServeHost: serveHost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	var nfs []*namedFile
	for name, body := range files {
		nfs = append(nfs, parsed(t, name, body))
	}
	snap := Build(nfs)
	snap.ServeHost(serveHost)
	srv.snap.Store(snap)
	return srv, &hits
}

// Gateways 10.89.0.1 (net a) and 10.89.1.1 (net b); 10.89.0.2 is on a,
// 10.89.1.2 on b, 10.89.0.3/10.89.1.3 is one container on both. The
// network's upstream is 127.0.8.1.
var accessNets = map[string]string{
	"a": "10.89.0.1 127.0.8.1\nca 10.89.0.2  web\ncm 10.89.0.3  multi\n",
	"b": "10.89.1.1 127.0.8.1\ncb 10.89.1.2  api\ncm 10.89.1.3  multi\n",
}

func TestOnlyContainersAreServed(t *testing.T) {
	srv, hits := newHandler(t, accessNets, false)
	for _, c := range []struct {
		src, local, name string
		rcode            int
		answers          int
	}{
		{"10.89.0.2", "10.89.0.1", "web", mdns.RcodeSuccess, 1},          // own network
		{"10.89.0.2", "10.89.0.1", "example.test", mdns.RcodeSuccess, 1}, // forwarded
		{"10.89.0.3", "10.89.0.1", "api", mdns.RcodeSuccess, 1},          // on both networks: sees both
		{"10.89.1.3", "10.89.0.1", "api", mdns.RcodeSuccess, 1},          // its b address at a's gateway
		{"10.89.0.2", "10.89.1.1", "api", mdns.RcodeRefused, 0},          // a's container at b's gateway
		{"10.89.0.2", "10.89.1.1", "example.test", mdns.RcodeRefused, 0},
		{"198.18.3.4", "10.89.0.1", "web", mdns.RcodeRefused, 0}, // a stranger
		{"198.18.3.4", "10.89.0.1", "example.test", mdns.RcodeRefused, 0},
		{"10.89.0.9", "10.89.0.1", "web", mdns.RcodeRefused, 0}, // in a's subnet, not a container
		{"10.89.0.1", "10.89.0.1", "web", mdns.RcodeRefused, 0}, // the host, not enabled
		{"127.0.0.1", "10.89.0.1", "web", mdns.RcodeRefused, 0}, // the host over loopback
		{"10.89.1.1", "10.89.0.1", "example.test", mdns.RcodeRefused, 0},
	} {
		before := hits.Load()
		r := serveFrom(srv, c.src, c.local, question(c.name, mdns.TypeA))
		if r == nil || r.Rcode != c.rcode || len(r.Answer) != c.answers {
			t.Errorf("%s asking %s for %s: %v, want rcode %d with %d answers", c.src, c.local, c.name, r, c.rcode, c.answers)
			continue
		}
		if c.rcode == mdns.RcodeRefused && hits.Load() != before {
			t.Errorf("%s asking %s for %s: forwarded although refused", c.src, c.local, c.name)
		}
	}
}

func TestHostServedWhenEnabled(t *testing.T) {
	srv, _ := newHandler(t, accessNets, true)
	for _, c := range []struct {
		src, local, name string
		rcode, answers   int
	}{
		{"10.89.0.1", "10.89.0.1", "web", mdns.RcodeSuccess, 1},
		{"10.89.1.1", "10.89.0.1", "web", mdns.RcodeSuccess, 1}, // another gateway of the host
		{"127.0.0.1", "10.89.1.1", "api", mdns.RcodeSuccess, 1},
		{"::1", "10.89.1.1", "api", mdns.RcodeSuccess, 1},
		{"127.0.0.1", "10.89.1.1", "web.dns.podman", mdns.RcodeNameError, 0}, // the listener's networks only
		{"10.89.0.1", "10.89.0.1", "example.test", mdns.RcodeSuccess, 1},
		{"198.18.3.4", "10.89.0.1", "web", mdns.RcodeRefused, 0}, // strangers still refused
	} {
		r := serveFrom(srv, c.src, c.local, question(c.name, mdns.TypeA))
		if r == nil || r.Rcode != c.rcode || len(r.Answer) != c.answers {
			t.Errorf("%s asking %s for %s: %v, want rcode %d with %d answers", c.src, c.local, c.name, r, c.rcode, c.answers)
		}
	}
}

func TestUpdateAndZoneTransfersAreNotAnswered(t *testing.T) {
	srv, hits := newHandler(t, accessNets, false)
	upd := new(mdns.Msg)
	upd.SetUpdate("dns.podman.")
	upd.Insert([]mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: "evil.dns.podman.", Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: net.IPv4(198, 18, 0, 66)}})
	updWeb := new(mdns.Msg)
	updWeb.SetUpdate("web.")
	notify := new(mdns.Msg)
	notify.SetNotify("example.test.")
	for _, c := range []struct {
		what  string
		q     *mdns.Msg
		rcode int
	}{
		{"UPDATE of the search domain", upd, mdns.RcodeNotImplemented},
		{"UPDATE of a container name", updWeb, mdns.RcodeNotImplemented},
		{"NOTIFY", notify, mdns.RcodeNotImplemented},
		{"AXFR of a container name", question("web", mdns.TypeAXFR), mdns.RcodeRefused},
		{"AXFR of the search domain", question("dns.podman", mdns.TypeAXFR), mdns.RcodeRefused},
		{"AXFR of an outside zone", question("example.test", mdns.TypeAXFR), mdns.RcodeRefused},
		{"IXFR of a container name", question("web", mdns.TypeIXFR), mdns.RcodeRefused},
		{"IXFR of an outside zone", question("example.test", mdns.TypeIXFR), mdns.RcodeRefused},
	} {
		before := hits.Load()
		r := serveFrom(srv, "10.89.0.2", "10.89.0.1", c.q)
		if r == nil || r.Rcode != c.rcode || len(r.Answer) != 0 {
			t.Errorf("%s: %v, want rcode %s", c.what, r, mdns.RcodeToString[c.rcode])
		}
		if hits.Load() != before {
			t.Errorf("%s: forwarded upstream", c.what)
		}
	}
	if _, found := srv.Snapshot().ScopeFor(netip.MustParseAddr("10.89.0.2"), netip.MustParseAddr("10.89.0.1")).Lookup("evil", false); found {
		t.Error("UPDATE added a name")
	}
}

func parsed(t *testing.T, name, body string) *namedFile {
	t.Helper()
	f, err := aardvarkconf.Parse(strings.NewReader(body), name)
	if err != nil {
		t.Fatal(err)
	}
	return NamedFile(name, f)
}

// Over real sockets, UDP (with its reply cache) and TCP refuse the same
// sources the handler does.
func TestRefusedOverUDPAndTCP(t *testing.T) {
	f := start(t, twoNets, func(c *Config) { c.ServeHost = false })
	for _, netw := range []string{"udp", "tcp"} {
		for i := 0; i < 2; i++ { // the second round may come from the cache
			if got := addrs(f.query(t, "127.0.1.2", "127.0.0.1", netw, "web", mdns.TypeA)); len(got) != 1 {
				t.Errorf("%s: container at its gateway: %v", netw, got)
			}
			if r := f.query(t, "127.0.1.1", "127.0.0.2", netw, "api", mdns.TypeA); r.Rcode != mdns.RcodeRefused || len(r.Answer) != 0 {
				t.Errorf("%s: net1 container at net2's listener: rcode %d %v", netw, r.Rcode, addrs(r))
			}
			if r := f.query(t, "127.0.0.9", "127.0.0.1", netw, "web", mdns.TypeA); r.Rcode != mdns.RcodeRefused || len(r.Answer) != 0 {
				t.Errorf("%s: the host, not enabled: rcode %d %v", netw, r.Rcode, addrs(r))
			}
		}
	}
}

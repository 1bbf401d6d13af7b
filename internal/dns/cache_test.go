package dns

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	mdns "github.com/miekg/dns"
)

// Repeated queries are answered from the reply cache: each answer carries
// its own query's ID and question spelling, different sources keep their
// own scopes, and a reload replaces what the cache knew.
func TestReplyCache(t *testing.T) {
	f := start(t, twoNets, nil)
	for i, name := range []string{"web.", "web.", "WEB.", "web."} {
		m := new(mdns.Msg)
		m.SetQuestion(name, mdns.TypeA)
		m.Id = uint16(1000 + i)
		r := f.exchange(t, "127.0.1.2", "127.0.0.1", "udp", m)
		if r.Id != m.Id || r.Question[0].Name != name {
			t.Errorf("query %d: reply id %d question %q, want %d %q", i, r.Id, r.Question[0].Name, m.Id, name)
		}
		if got := addrs(r); len(got) != 1 || got[0] != "127.0.1.1" {
			t.Errorf("query %d: %v", i, got)
		}
	}
	if n := len(f.srv.Snapshot().replies.m); n != 2 {
		t.Errorf("cache holds %d replies, want 2 (web. and WEB.)", n)
	}
	// Same question from net2: not the cached net1 answer.
	if r := f.query(t, "127.0.2.3", "127.0.0.2", "udp", "web.dns.podman", mdns.TypeA); r.Rcode != mdns.RcodeNameError {
		t.Errorf("web from net2: rcode %d answers %v, want NXDOMAIN", r.Rcode, addrs(r))
	}
	// A reload with web's address changed answers the new address.
	os.WriteFile(filepath.Join(f.dir, "net1"), []byte("127.0.0.1\nc1 127.0.1.7  web,www\nc2 127.0.1.2 fd00::2 db\n"), 0o644)
	if _, err := f.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if got := addrs(f.query(t, "127.0.1.2", "127.0.0.1", "udp", "web", mdns.TypeA)); len(got) != 1 || got[0] != "127.0.1.7" {
			t.Errorf("after reload, query %d: %v, want 127.0.1.7", i, got)
		}
	}
}

// A forwarded name is remembered as "forward": the repeat is relayed
// without being unpacked, and still fails over to SERVFAIL when no
// upstream answers.
func TestReplyCacheForwardDecision(t *testing.T) {
	f := start(t, twoNets, nil) // resolv.conf has no servers
	for i := 0; i < 3; i++ {
		r := f.query(t, "127.0.1.2", "127.0.0.1", "udp", "example.org", mdns.TypeA)
		if r.Rcode != mdns.RcodeServerFailure || r.Question[0].Name != "example.org." {
			t.Errorf("query %d: rcode %d question %v, want SERVFAIL for example.org.", i, r.Rcode, r.Question)
		}
	}
	reply, ok := f.srv.Snapshot().replies.m[string(cacheKeyFor(t, "example.org.", mdns.TypeA))]
	if !ok || reply != nil {
		t.Errorf("forward decision not cached (ok %v, reply %d bytes)", ok, len(reply))
	}
}

// cacheKeyFor is the key of the query a fixture sends from 127.0.1.2 to
// 127.0.0.1 (miekg's client sets RD).
func cacheKeyFor(t *testing.T, name string, qtype uint16) []byte {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return cacheKey(nil, mustAddr("127.0.1.2"), mustAddr("127.0.0.1"), b)
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

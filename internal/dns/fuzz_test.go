package dns

import (
	"net/netip"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/berthnet/berth/internal/aardvarkconf"
)

func fuzzSnapshot() *Snapshot {
	f1, _ := aardvarkconf.Parse(strings.NewReader("10.0.0.1\nc1 10.0.0.2 fd00::2 web,www\nc2 10.0.0.3  db 9.9.9.9\n"), "n1")
	f2, _ := aardvarkconf.Parse(strings.NewReader("10.1.0.1\nc3 10.1.0.2  api\n"), "n2%int")
	return Build([]*namedFile{NamedFile("n1", f1), NamedFile("n2%int", f2)})
}

// FuzzQuery: any packet a client sends is answered or refused without a
// panic, and the reply packs.
func FuzzQuery(f *testing.F) {
	for _, q := range []struct {
		name string
		t    uint16
	}{{"web.", mdns.TypeA}, {"WWW.dns.podman.", mdns.TypeAAAA}, {"2.0.0.10.in-addr.arpa.", mdns.TypePTR}, {"x.test.", mdns.TypeMX}, {".", mdns.TypeNS}} {
		m := new(mdns.Msg)
		m.SetQuestion(q.name, q.t)
		b, _ := m.Pack()
		f.Add(b, byte(0))
	}
	snap := fuzzSnapshot()
	srcs := []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.1.0.2"), netip.MustParseAddr("10.9.9.9")}
	var cache replyCache
	f.Fuzz(func(t *testing.T, pkt []byte, who byte) {
		q := new(mdns.Msg)
		if err := q.Unpack(pkt); err != nil {
			return
		}
		src, local := srcs[int(who)%len(srcs)], netip.MustParseAddr("10.0.0.1")
		sc := snap.ScopeFor(src, local)
		reply := new(mdns.Msg)
		if answer(sc, q, reply, DefaultFilterDomain, false) == answered {
			b := packReply(q, reply)
			if b == nil {
				t.Fatalf("reply does not pack")
			}
			// What the UDP path caches comes back byte for byte, ID
			// cleared for the next asker's ID.
			key := cacheKey(nil, src, local, pkt)
			cache.put(key, b)
			if got, ok := cache.get(key); ok && (len(got) != len(b) || got[0] != 0 || got[1] != 0 || string(got[2:]) != string(b[2:])) {
				t.Fatalf("cached reply differs from the packed one")
			}
		}
	})
}

package iptables

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/firewall"
)

// FuzzCommentOf: the comment of a rule that carries a mark is the mark,
// whatever the network ID, and no input makes commentOf panic.
func FuzzCommentOf(f *testing.F) {
	f.Add("4a59abe2", `-s 1.2.3.0/24 -m comment --comment "x y" -j ACCEPT`)
	f.Add("a\"b\\c", `--comment "\"`)
	f.Fuzz(func(t *testing.T, id, spec string) {
		_, _ = commentOf(spec)
		n := firewall.NetworkRules{ID: id, Bridge: "br0", Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.0.0/24")}}
		for _, r := range acceptRules(n, ipv4, true) {
			if got, ok := commentOf(normalize(r)); !ok || got != firewall.Mark(id) {
				t.Fatalf("comment of %q: %q, %v; want %q", r, got, ok, firewall.Mark(id))
			}
		}
	})
}

// FuzzParseSave: iptables-save output that parses renders to text that
// parses to the same rules again.
func FuzzParseSave(f *testing.F) {
	f.Add(golden(f, "docker-20.10.iptables-save"))
	f.Add(golden(f, "docker-28.iptables-save"))
	f.Add("*filter\n:FORWARD DROP [3:4]\n[1:2] -A FORWARD -j X\nCOMMIT\n")
	f.Fuzz(func(t *testing.T, text string) {
		rs, err := parseSave([]byte(text))
		if err != nil {
			return
		}
		tables := sortedTables(rs.tables)
		once := rs.render(tables...)
		again, err := parseSave([]byte(once))
		if err != nil {
			t.Fatalf("rendered rules do not parse: %v\n%s", err, once)
		}
		if twice := again.render(tables...); twice != once {
			t.Fatalf("render is not stable:\n%s\nthen\n%s", once, twice)
		}
	})
}

// FuzzLegacyVersion: a version line that says "(legacy)" is legacy's,
// and no input makes legacyVersion panic.
func FuzzLegacyVersion(f *testing.F) {
	for _, v := range []string{"iptables-save v1.8.9 (legacy)", "iptables-save v1.8.9 (nf_tables)", "iptables-save v1.6.1", "x v", " v9999999999999999999999.1"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if strings.Contains(v, "(legacy)") && !legacyVersion(v) {
			t.Errorf("legacyVersion(%q) = false", v)
		}
	})
}

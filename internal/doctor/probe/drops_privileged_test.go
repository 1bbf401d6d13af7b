package probe

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/doctor"
	"github.com/berthnet/berth/internal/nettest"
)

// TestPrivilegedDropsWithBerthsAcceptRules: Docker's FORWARD policy DROP
// with berth's accept rule in DOCKER-USER (iptables-nft, an xt comment),
// and a host's inet filter chain of policy drop with berth's accept rule
// appended (a comment of nftables' own): each drop comes with the network
// ID whose accept rules get past it, and the chain they are in.
func TestPrivilegedDropsWithBerthsAcceptRules(t *testing.T) {
	nettest.Privileged(t)
	ns := nettest.NewNS(t, "probe")
	docker, err := os.ReadFile("../../firewall/iptables/testdata/docker-20.10.iptables-save")
	if err != nil {
		t.Fatal(err)
	}
	script := "iptables-nft-restore <<'END'\n" + string(docker) + "END\n" +
		`iptables-nft -I DOCKER-USER 1 -s 198.19.0.0/24 -m comment --comment "berth net abc" -j ACCEPT` + "\n" +
		"nft -f - <<'END'\n" + `table inet filter {
	chain forward {
		type filter hook forward priority filter; policy drop;
		iifname "lan0" drop
		ip saddr 198.19.1.0/24 accept comment "berth net def"
	}
}
END
`
	if out, err := nettest.Run(ns, 10*time.Second, "sh", "-c", script); err != nil {
		t.Fatalf("load the rules: %v\n%s", err, out)
	}
	s := Collect(ns.NetNS, Request{OwnTable: "berth"})
	// Docker's isolation rules (DOCKER-ISOLATION-STAGE-2) come after
	// berth's accept rule in DOCKER-USER.
	want := map[string]map[string]string{
		"table ip filter chain FORWARD, policy":                           {"abc": "DOCKER-USER"},
		"table ip filter chain FORWARD, rule in DOCKER-ISOLATION-STAGE-2": {"abc": "DOCKER-USER"},
		"table inet filter chain forward, policy":                         {"def": "forward"},
		"table inet filter chain forward, rule in forward":                {},
	}
	got := map[string]doctor.Drop{}
	for _, d := range s.Drops {
		kind := ", policy"
		if !d.Policy {
			kind = ", rule in " + d.Rule[strings.LastIndex(d.Rule, " ")+1:]
		}
		got[d.Chain+kind] = d
	}
	for key, w := range want {
		d, ok := got[key]
		if !ok {
			t.Errorf("no drop %s; got %+v", key, s.Drops)
			continue
		}
		if len(d.Accepted) != len(w) {
			t.Errorf("%s: accepted %v, want %v", key, d.Accepted, w)
		}
		for id, ch := range w {
			if d.Accepted[id] != ch {
				t.Errorf("%s: accepted %v, want %v", key, d.Accepted, w)
			}
		}
	}
}

package probe

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/google/nftables/xt"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestVerdictOf(t *testing.T) {
	for name, tc := range map[string]struct {
		exprs    []expr.Any
		v        expr.VerdictKind
		target   string
		stateful bool
	}{
		"plain drop":        {[]expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}, expr.VerdictDrop, "", false},
		"ct state drop":     {[]expr.Any{&expr.Ct{Key: expr.CtKeySTATE, Register: 1}, &expr.Verdict{Kind: expr.VerdictDrop}}, expr.VerdictDrop, "", true},
		"xt conntrack":      {[]expr.Any{&expr.Match{Name: "conntrack"}, &expr.Verdict{Kind: expr.VerdictDrop}}, expr.VerdictDrop, "", true},
		"reject":            {[]expr.Any{&expr.Reject{}}, expr.VerdictDrop, "", false},
		"xt REJECT":         {[]expr.Any{&expr.Target{Name: "REJECT"}}, expr.VerdictDrop, "", false},
		"jump":              {[]expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "DOCKER-USER"}}, expr.VerdictJump, "DOCKER-USER", false},
		"berth's iptables":  {[]expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: iptablesChain}}, expr.VerdictJump, iptablesChain, false},
		"accept":            {[]expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}, expr.VerdictAccept, "", false},
		"counter, no final": {[]expr.Any{&expr.Counter{}}, expr.VerdictContinue, "", false},
	} {
		v, target, stateful := verdictOf(&nftables.Rule{Exprs: tc.exprs})
		if v != tc.v || target != tc.target || stateful != tc.stateful {
			t.Errorf("%s: got %v %q %v, want %v %q %v", name, v, target, stateful, tc.v, tc.target, tc.stateful)
		}
	}
}

func TestMark(t *testing.T) {
	nft := &nftables.Rule{UserData: userdata.AppendString(nil, userdata.TypeComment, "berth net abc")}
	c := xt.Comment("berth net def")
	ipt := &nftables.Rule{Exprs: []expr.Any{&expr.Match{Name: "conntrack"}, &expr.Match{Name: "comment", Info: &c}, &expr.Verdict{Kind: expr.VerdictAccept}}}
	for r, want := range map[*nftables.Rule]string{nft: "berth net abc", ipt: "berth net def", {}: ""} {
		if got := mark(r); got != want {
			t.Errorf("mark: %q, want %q", got, want)
		}
	}
}

func TestRoute(t *testing.T) {
	names := map[int]string{3: "eth0"}
	r := route(netlink.Route{LinkIndex: 3, Gw: net.ParseIP("192.0.2.1"), Table: 254, Type: unix.RTN_UNICAST}, netlink.FAMILY_V4, names)
	if r.Dst != netip.MustParsePrefix("0.0.0.0/0") || r.Dev != "eth0" || r.Gateway != netip.MustParseAddr("192.0.2.1") || r.Type != "unicast" {
		t.Errorf("default route: %+v", r)
	}
	_, dst, _ := net.ParseCIDR("198.19.1.0/24")
	r = route(netlink.Route{Dst: dst, Table: 100, Type: unix.RTN_BLACKHOLE}, netlink.FAMILY_V4, names)
	if r.Dst != netip.MustParsePrefix("198.19.1.0/24") || r.Type != "blackhole" || r.Table != 100 {
		t.Errorf("blackhole: %+v", r)
	}
	r = route(netlink.Route{LinkIndex: 3}, netlink.FAMILY_V6, names)
	if r.Dst != netip.MustParsePrefix("::/0") {
		t.Errorf("v6 default: %+v", r)
	}
	// A 16-byte IPv4 address with a 128-bit mask is the /24 it means.
	if p := prefixOf(&net.IPNet{IP: net.ParseIP("198.19.1.0"), Mask: net.CIDRMask(120, 128)}); p != netip.MustParsePrefix("198.19.1.0/24") {
		t.Errorf("mapped prefix: %v", p)
	}
}

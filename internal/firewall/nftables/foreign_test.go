package nftables

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"

	"github.com/berthnet/berth/internal/firewall"
)

func TestAcceptExprs(t *testing.T) {
	n := firewall.NetworkRules{ID: "n1", Bridge: "bacc0", Subnets: []netip.Prefix{
		netip.MustParsePrefix("198.19.5.7/24"), netip.MustParsePrefix("fd00:5::/64")}}
	text := func(tf nftables.TableFamily, n firewall.NetworkRules) []string {
		var out []string
		for _, e := range acceptExprs(tf, n) {
			out = append(out, (&ruleText{}).render(e))
		}
		return out
	}
	want4 := []string{
		`meta nfproto ipv4 oifname bacc0 ip daddr 198.19.5.0/24 ct state established,related accept`,
		`meta nfproto ipv4 oifname bacc0 ip daddr 198.19.5.0/24 ct status dnat accept`,
		`meta nfproto ipv4 iifname bacc0 ip saddr 198.19.5.0/24 accept`,
	}
	want6 := []string{
		`meta nfproto ipv6 oifname bacc0 ip6 daddr fd00:5::/64 ct state established,related accept`,
		`meta nfproto ipv6 oifname bacc0 ip6 daddr fd00:5::/64 ct status dnat accept`,
		`meta nfproto ipv6 iifname bacc0 ip6 saddr fd00:5::/64 accept`,
	}
	if diff := cmp.Diff(append(want4, want6...), text(nftables.TableFamilyINet, n)); diff != "" {
		t.Errorf("inet (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want4, text(nftables.TableFamilyIPv4, n)); diff != "" {
		t.Errorf("ip (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want6, text(nftables.TableFamilyIPv6, n)); diff != "" {
		t.Errorf("ip6 (-want +got):\n%s", diff)
	}
	n.Bridge = ""
	if got := text(nftables.TableFamilyIPv4, n); !slices.Equal(got, []string{
		`meta nfproto ipv4 ip daddr 198.19.5.0/24 ct state established,related accept`,
		`meta nfproto ipv4 ip daddr 198.19.5.0/24 ct status dnat accept`,
		`meta nfproto ipv4 ip saddr 198.19.5.0/24 accept`,
	}) {
		t.Errorf("without a bridge: %q", got)
	}
}

func TestForwardChains(t *testing.T) {
	drop, accept := nftables.ChainPolicyDrop, nftables.ChainPolicyAccept
	chain := func(f nftables.TableFamily, table, name string, hook *nftables.ChainHook, policy *nftables.ChainPolicy) *nftables.Chain {
		return &nftables.Chain{Table: &nftables.Table{Family: f, Name: table}, Name: name, Hooknum: hook, Type: nftables.ChainTypeFilter, Policy: policy}
	}
	fwd, in := nftables.ChainHookForward, nftables.ChainHookInput
	chains := []*nftables.Chain{
		chain(nftables.TableFamilyINet, "filter", "forward", fwd, &drop),
		chain(nftables.TableFamilyINet, "filter", "input", in, &drop),
		chain(nftables.TableFamilyINet, TableName, "forward", fwd, &accept),
		chain(nftables.TableFamilyIPv4, "filter", "FORWARD", fwd, &drop),
		chain(nftables.TableFamilyIPv6, "mangle", "FORWARD", fwd, &accept),
		chain(nftables.TableFamilyIPv4, "filter", "DOCKER-USER", nil, nil),
		chain(nftables.TableFamilyIPv4, "docker-bridges", "filter-FORWARD", fwd, &accept),
		chain(nftables.TableFamilyIPv6, "host", "fwd", fwd, &drop),
		chain(nftables.TableFamilyBridge, "filter", "forward", fwd, &drop),
	}
	got, others := forwardChains(chains)
	var names []string
	for _, ch := range got {
		names = append(names, ch.Table.Name+"/"+ch.Name)
	}
	if want := []string{"filter/forward", "docker-bridges/filter-FORWARD", "host/fwd"}; !slices.Equal(names, want) {
		t.Errorf("forward chains of other tables: %q, want %q", names, want)
	}
	if flags(others) != [4]bool{true, false, true, false} {
		t.Errorf("others: %+v", others)
	}
	// iptables-nft's FORWARD of policy accept: berth's rules are needed
	// there only beside Docker's DOCKER-USER.
	chains[3].Policy = &accept
	if _, others := forwardChains(chains); flags(others) != [4]bool{true, false, true, false} {
		t.Errorf("beside DOCKER-USER: %+v", others)
	}
	if _, others := forwardChains(slices.Delete(slices.Clone(chains), 5, 6)); flags(others) != [4]bool{true, false, false, false} {
		t.Errorf("without DOCKER-USER: %+v", others)
	}
	var dropping []string
	for _, ch := range got {
		if dropsByPolicy(ch) {
			dropping = append(dropping, ch.Table.Name)
		}
	}
	if !slices.Equal(dropping, []string{"filter", "host"}) {
		t.Errorf("dropping by policy: %q", dropping)
	}
}

// flags returns Iptables4, Iptables6, Drops4 and Drops6.
func flags(o Others) [4]bool { return [4]bool{o.Iptables4, o.Iptables6, o.Drops4, o.Drops6} }

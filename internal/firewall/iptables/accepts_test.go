package iptables

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthnet/berth/internal/firewall"
)

// acceptNet is a berth network on bridge bacc0 with a subnet of each family.
func acceptNet(id, br string) firewall.NetworkRules {
	return firewall.NetworkRules{ID: id, Name: "n-" + id, Bridge: br, Subnets: []netip.Prefix{
		netip.MustParsePrefix("198.19.5.0/24"), netip.MustParsePrefix("fd00:5::/64")}}
}

// loadSave parses a testdata ruleset (or the text itself, for one with a
// newline).
func loadSave(t *testing.T, nameOrText string) *ruleset {
	t.Helper()
	text := nameOrText
	if !strings.Contains(text, "\n") {
		text = golden(t, text)
	}
	rs, err := parseSave([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestAcceptRules(t *testing.T) {
	n := acceptNet("4a59", "bacc0")
	want := []string{
		`-d 198.19.5.0/24 -o bacc0 -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment "berth net 4a59" -j ACCEPT`,
		`-s 198.19.5.0/24 -i bacc0 -m comment --comment "berth net 4a59" -j ACCEPT`,
	}
	if diff := cmp.Diff(want, acceptRules(n, ipv4, true)); diff != "" {
		t.Errorf("outbound (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[:1], acceptRules(n, ipv4, false)); diff != "" {
		t.Errorf("inbound only (-want +got):\n%s", diff)
	}
	n.Bridge = ""
	if got := acceptRules(n, ipv6, true); !slices.Equal(got, []string{
		`-d fd00:5::/64 -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment "berth net 4a59" -j ACCEPT`,
		`-s fd00:5::/64 -m comment --comment "berth net 4a59" -j ACCEPT`,
	}) {
		t.Errorf("without a bridge: %q", got)
	}
}

func TestAcceptChain(t *testing.T) {
	for _, tc := range []struct {
		name, save, want string
	}{
		{"docker 20.10", "docker-20.10.iptables-save", chainDockerUser},
		{"docker 28", "docker-28.iptables-save", chainDockerUser},
		{"no filter table", "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n", ""},
		{"policy accept", "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n", ""},
		{"policy drop", "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -i lan0 -j ACCEPT\nCOMMIT\n", chainForward},
		// Docker with its nftables backend leaves DOCKER-USER without the
		// jump; a DROP policy is still FORWARD's.
		{"docker-user not jumped to", "*filter\n:FORWARD DROP [0:0]\n:DOCKER-USER - [0:0]\nCOMMIT\n", chainForward},
		{"docker policy accept", "*filter\n:FORWARD ACCEPT [0:0]\n:DOCKER-USER - [0:0]\n-A FORWARD -j DOCKER-USER\nCOMMIT\n", chainDockerUser},
	} {
		if got := acceptChain(loadSave(t, tc.save)); got != tc.want {
			t.Errorf("%s: accept chain %q, want %q", tc.name, got, tc.want)
		}
	}
}

// fakeWith returns a fake kernel whose IPv4 rules are the ruleset.
func fakeWith(t *testing.T, save string) *fakeKernel {
	k := newFakeKernel()
	k.rs[ipv4] = loadSave(t, save)
	return k
}

func TestAcceptsBesideDocker(t *testing.T) {
	for _, tc := range []struct {
		save string
		// want is DOCKER-USER after Ensure.
		want []string
	}{
		{"docker-20.10.iptables-save", []string{
			`-d 198.19.5.0/24 -o bacc0 -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment "berth net n1" -j ACCEPT`,
			`-s 198.19.5.0/24 -i bacc0 -m comment --comment "berth net n1" -j ACCEPT`,
			`-j RETURN`,
		}},
		{"docker-28.iptables-save", []string{
			`-d 198.19.5.0/24 -o bacc0 -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment "berth net n1" -j ACCEPT`,
			`-s 198.19.5.0/24 -i bacc0 -m comment --comment "berth net n1" -j ACCEPT`,
		}},
	} {
		t.Run(tc.save, func(t *testing.T) {
			k := fakeWith(t, tc.save)
			before := k.rs[ipv4].render("raw", tableFilter, tableNAT)
			a := k.driver(t).Accepts(true)
			n := acceptNet("n1", "bacc0")
			n.Subnets = n.Subnets[:1]
			must(t, "ensure", a.Ensure([]firewall.NetworkRules{n}))
			if diff := cmp.Diff(tc.want, k.rs[ipv4].chain(tableFilter, chainDockerUser).rules); diff != "" {
				t.Errorf("DOCKER-USER (-want +got):\n%s", diff)
			}
			if missing, err := a.Missing([]firewall.NetworkRules{n}); err != nil || missing {
				t.Errorf("missing after ensure: %v, %v", missing, err)
			}
			restores := k.count("iptables-restore")
			must(t, "ensure again", a.Ensure([]firewall.NetworkRules{n}))
			if k.count("iptables-restore") != restores {
				t.Error("a second ensure ran iptables-restore")
			}
			must(t, "remove", a.Remove([]string{"n1"}))
			if diff := cmp.Diff(before, k.rs[ipv4].render("raw", tableFilter, tableNAT)); diff != "" {
				t.Errorf("Docker's rules after removal (-before +after):\n%s", diff)
			}
		})
	}
}

func TestAcceptsForwardPolicyDrop(t *testing.T) {
	k := fakeWith(t, "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -i lan0 -o wan0 -j ACCEPT\nCOMMIT\n")
	a := k.driver(t).Accepts(false)
	n := acceptNet("n1", "bacc0")
	must(t, "ensure", a.Ensure([]firewall.NetworkRules{n}))
	want := []string{
		`-i lan0 -o wan0 -j ACCEPT`,
		`-d 198.19.5.0/24 -o bacc0 -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment "berth net n1" -j ACCEPT`,
	}
	if diff := cmp.Diff(want, k.rs[ipv4].chain(tableFilter, chainForward).rules); diff != "" {
		t.Errorf("FORWARD (-want +got):\n%s", diff)
	}
	// The IPv6 table has no DROP policy: nothing changes there.
	if got := k.rs[ipv6].tables[tableFilter]; got != nil {
		t.Errorf("ipv6 filter table written: %+v", got)
	}
}

func TestAcceptsNotNeeded(t *testing.T) {
	k := fakeWith(t, "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n")
	a := k.driver(t).Accepts(true)
	must(t, "ensure", a.Ensure([]firewall.NetworkRules{acceptNet("n1", "bacc0")}))
	if n := k.count("iptables-restore") + k.count("ip6tables-restore"); n != 0 {
		t.Errorf("%d restores where no chain drops", n)
	}
}

// Docker starting after berth's setup: the accept rules are missing until
// the next Ensure adds them, and Missing says so.
func TestAcceptsDockerLater(t *testing.T) {
	k := fakeWith(t, "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n")
	a := k.driver(t).Accepts(true)
	nets := []firewall.NetworkRules{acceptNet("n1", "bacc0")}
	must(t, "ensure", a.Ensure(nets))
	k.rs[ipv4] = loadSave(t, "docker-28.iptables-save")
	if missing, err := a.Missing(nets); err != nil || !missing {
		t.Fatalf("missing after Docker started: %v, %v", missing, err)
	}
	must(t, "ensure", a.Ensure(nets))
	if got := len(k.rs[ipv4].chain(tableFilter, chainDockerUser).rules); got != 2 {
		t.Errorf("DOCKER-USER has %d rules, want 2", got)
	}
}

func TestRemoveAcceptsTouchesOnlyTheirs(t *testing.T) {
	k := fakeWith(t, "docker-20.10.iptables-save")
	k.rs[ipv4].chain(tableFilter, chainDockerUser).rules = []string{
		`-s 203.0.113.0/24 -j DROP`,
		`-m comment --comment "berth network" -j ACCEPT`,
		`-j RETURN`,
	}
	a := k.driver(t).Accepts(true)
	n1, n2 := acceptNet("n1", "bacc1"), acceptNet("n2", "bacc2")
	n2.Subnets = []netip.Prefix{netip.MustParsePrefix("198.19.6.0/24")}
	must(t, "ensure", a.Ensure([]firewall.NetworkRules{n1, n2}))
	must(t, "remove n1", a.Remove([]string{"n1"}))
	got := k.rs[ipv4].chain(tableFilter, chainDockerUser).rules
	want := []string{
		`-s 203.0.113.0/24 -j DROP`,
		`-m comment --comment "berth network" -j ACCEPT`,
		`-d 198.19.6.0/24 -o bacc2 -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment "berth net n2" -j ACCEPT`,
		`-s 198.19.6.0/24 -i bacc2 -m comment --comment "berth net n2" -j ACCEPT`,
		`-j RETURN`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DOCKER-USER after removing n1 (-want +got):\n%s", diff)
	}
	must(t, "remove all", a.RemoveAll())
	if got := k.rs[ipv4].chain(tableFilter, chainDockerUser).rules; len(got) != 3 {
		t.Errorf("after RemoveAll: %q", got)
	}
}

func TestCommentOf(t *testing.T) {
	for _, tc := range []struct {
		spec, want string
		ok         bool
	}{
		{`-s 10.0.0.0/8 -m comment --comment "berth net abc" -j ACCEPT`, "berth net abc", true},
		{`-m comment --comment plain -j ACCEPT`, "plain", true},
		{`-m comment --comment "say \"hi\" \\ there" -j ACCEPT`, `say "hi" \ there`, true},
		{`-m comment --comment "" -j ACCEPT`, "", true},
		{`-j ACCEPT`, "", false},
		{`-m comment --comment "open -j ACCEPT`, "", false},
		{`-m comment --comment`, "", false},
	} {
		got, ok := commentOf(tc.spec)
		if got != tc.want || ok != tc.ok {
			t.Errorf("commentOf(%q) = %q, %v; want %q, %v", tc.spec, got, ok, tc.want, tc.ok)
		}
	}
}

package nftables_test

import (
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/firewall"
	fwnft "github.com/berthnet/berth/internal/firewall/nftables"
	"github.com/berthnet/berth/internal/nettest"
)

// hostTables is a host's own ruleset: a forward chain of policy drop in
// table inet filter and one of policy drop in table ip6 guard (both get
// berth's accept rules), one of policy accept (left alone), and
// iptables-nft's FORWARD (left to the iptables binaries).
const hostTables = `table inet filter {
	chain forward {
		type filter hook forward priority filter; policy drop;
		iifname "lan0" oifname "wan0" accept
	}
}
table ip6 guard {
	chain passing {
		type filter hook forward priority filter + 10; policy drop;
	}
}
table ip open {
	chain passing {
		type filter hook forward priority filter; policy accept;
	}
}
`

func nft(t *testing.T, ns *nettest.NS, args ...string) string {
	t.Helper()
	out, err := nettest.Run(ns, 5*time.Second, "nft", args...)
	if err != nil {
		t.Fatalf("nft %s: %v %s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestPrivilegedAcceptsInOtherTables: berth's accept rules go at the end
// of every other table's forward chain that drops by policy, are found
// missing when deleted and restored, and their removal leaves the tables
// as they were.
func TestPrivilegedAcceptsInOtherTables(t *testing.T) {
	nettest.Privileged(t)
	ns := nettest.NewNS(t, "fw")
	if out, err := nettest.Run(ns, 5*time.Second, "sh", "-c", "printf '%s' '"+hostTables+"' | nft -f - && iptables-nft -P FORWARD DROP"); err != nil {
		t.Fatalf("load the host's tables: %v %s", err, out)
	}
	before := list(t, ns)
	d := fwnft.New(ns.Fd())
	nets := []firewall.NetworkRules{netA, netB}
	others, err := d.EnsureAccepts(nets)
	if err != nil {
		t.Fatal(err)
	}
	if !others.Iptables4 || !others.Drops4 || others.Iptables6 || others.Drops6 || len(others.Marks4) != 0 {
		t.Errorf("others: %+v", others)
	}
	out := nft(t, ns, "list", "chain", "inet", "filter", "forward")
	for _, want := range []string{
		`iifname "lan0" oifname "wan0" accept` + "\n\t\toifname \"bra0\" ip daddr 198.19.1.0/24 ct state established,related accept comment \"berth net " + netA.ID + `"`,
		`oifname "bra0" ip daddr 198.19.1.0/24 ct status dnat accept comment "berth net ` + netA.ID + `"`,
		`iifname "bra0" ip saddr 198.19.1.0/24 accept comment "berth net ` + netA.ID + `"`,
		`iifname "bra0" ip6 saddr fd00:19:1::/64 accept comment "berth net ` + netA.ID + `"`,
		`iifname "brb0" ip saddr 198.19.2.0/24 accept comment "berth net ` + netB.ID + `"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inet filter forward lacks %q:\n%s", want, out)
		}
	}
	if got := strings.Count(nft(t, ns, "list", "chain", "ip6", "guard", "passing"), "berth net"); got != 3 {
		t.Errorf("ip6 guard holds %d accept rules, want 3 (network A's IPv6 subnet)", got)
	}
	all := list(t, ns)
	if strings.Contains(all[strings.Index(all, "table ip open"):], "berth net") {
		t.Errorf("a chain of policy accept got accept rules:\n%s", all)
	}
	if ok, _, err := d.AcceptsIntact(nets); err != nil || !ok {
		t.Errorf("intact after ensure: %v, %v", ok, err)
	}
	if _, err := d.EnsureAccepts(nets); err != nil {
		t.Fatal(err)
	}
	if again := list(t, ns); again != all {
		t.Errorf("a second ensure changed the ruleset:\n%s", again)
	}

	// One rule gone: not intact, and the next ensure puts it back.
	handles := nft(t, ns, "-a", "list", "chain", "inet", "filter", "forward")
	var handle string
	for _, l := range strings.Split(handles, "\n") {
		if strings.Contains(l, "ct status dnat") && strings.Contains(l, netB.ID) {
			handle = l[strings.LastIndex(l, " ")+1:]
		}
	}
	nft(t, ns, "delete", "rule", "inet", "filter", "forward", "handle", handle)
	if ok, _, err := d.AcceptsIntact(nets); err != nil || ok {
		t.Errorf("intact without one rule: %v, %v", ok, err)
	}
	if _, err := d.EnsureAccepts(nets); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(nft(t, ns, "list", "chain", "inet", "filter", "forward"), "berth net "+netB.ID); got != 3 {
		t.Errorf("network B has %d accept rules after the repair, want 3", got)
	}

	if _, err := d.RemoveAccepts([]string{netA.ID}, false); err != nil {
		t.Fatal(err)
	}
	out = list(t, ns)
	if strings.Contains(out, netA.ID) || !strings.Contains(out, netB.ID) {
		t.Errorf("after removing network A's:\n%s", out)
	}
	if _, err := d.RemoveAccepts([]string{netB.ID}, false); err != nil {
		t.Fatal(err)
	}
	if after := list(t, ns); after != before {
		t.Errorf("the host's tables after berth's rules are gone:\n%s\nwere\n%s", after, before)
	}
}

// TestPrivilegedCountsIptablesMarks: berth's marks in iptables-nft's rules
// are counted where the accept rules belong (Docker's DOCKER-USER when
// FORWARD jumps there), from the comment matches iptables-nft writes.
func TestPrivilegedCountsIptablesMarks(t *testing.T) {
	nettest.Privileged(t)
	ns := nettest.NewNS(t, "fw")
	script := "iptables-nft-restore < ../iptables/testdata/docker-20.10.iptables-save && " +
		`iptables-nft -I DOCKER-USER -s 198.19.1.0/24 -m comment --comment "berth net a1" -j ACCEPT && ` +
		`iptables-nft -I DOCKER-USER -d 198.19.1.0/24 -m comment --comment "berth net a1" -j ACCEPT && ` +
		`iptables-nft -A FORWARD -s 198.19.2.0/24 -m comment --comment "berth net b1" -j ACCEPT`
	if out, err := nettest.Run(ns, 10*time.Second, "sh", "-c", script); err != nil {
		t.Fatalf("load Docker's rules: %v %s", err, out)
	}
	_, others, err := fwnft.New(ns.Fd()).AcceptsIntact(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !others.Drops4 || len(others.Marks4) != 1 || others.Marks4["berth net a1"] != 2 {
		t.Errorf("marks in DOCKER-USER: %+v", others)
	}
	// Without the jump, FORWARD (policy DROP) is where they belong.
	if out, err := nettest.Run(ns, 5*time.Second, "iptables-nft", "-D", "FORWARD", "-j", "DOCKER-USER"); err != nil {
		t.Fatal(err, out)
	}
	_, others, err = fwnft.New(ns.Fd()).AcceptsIntact(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(others.Marks4) != 1 || others.Marks4["berth net b1"] != 1 {
		t.Errorf("marks in FORWARD: %+v", others)
	}
}

package core_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

// A host firewall that drops forwarded traffic by policy, beside berth: it
// is loaded into the host namespace, and rules reads back the part of the
// ruleset that is the other program's, to compare before and after.
type otherFirewall struct {
	name  string
	load  func(t *testing.T, host *nettest.NS)
	rules func(t *testing.T, host *nettest.NS) string
}

// hostInetFilter is a host's own nftables firewall: forwarding between
// its LAN and WAN only.
const hostInetFilter = `table inet filter {
	chain forward {
		type filter hook forward priority filter; policy drop;
		iifname "lan0" oifname "wan0" accept
	}
}
`

var otherFirewalls = []otherFirewall{
	{"docker-20.10", loadIptables("../firewall/iptables/testdata/docker-20.10.iptables-save"), dockerRules},
	{"docker-28", loadIptables("../firewall/iptables/testdata/docker-28.iptables-save"), dockerRules},
	{"inet-filter-drop", loadNft(hostInetFilter), nftTable("inet", "filter")},
}

// loadIptables loads an iptables-save file with iptables-nft-restore, as
// Docker's rules are on Debian.
func loadIptables(file string) func(*testing.T, *nettest.NS) {
	return func(t *testing.T, host *nettest.NS) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		run(t, host, "sh", "-c", "iptables-nft-restore --noflush <<'EOF'\n"+string(b)+"EOF\n")
	}
}

func loadNft(ruleset string) func(*testing.T, *nettest.NS) {
	return func(t *testing.T, host *nettest.NS) {
		run(t, host, "sh", "-c", "nft -f - <<'EOF'\n"+ruleset+"EOF\n")
	}
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// dockerRules is the IPv4 iptables ruleset without comment lines and
// counters and without the NETAVARK chains of berth's iptables driver
// (whose shared chains outlive a teardown, as netavark's do).
func dockerRules(t *testing.T, host *nettest.NS) string {
	var keep []string
	for _, l := range strings.Split(run(t, host, "iptables-nft-save"), "\n") {
		if strings.HasPrefix(l, "#") || strings.Contains(l, "NETAVARK") {
			continue
		}
		keep = append(keep, counters.ReplaceAllString(l, "[0:0]"))
	}
	return strings.Join(keep, "\n")
}

func nftTable(family, name string) func(*testing.T, *nettest.NS) string {
	return func(t *testing.T, host *nettest.NS) string {
		return run(t, host, "nft", "list", "table", family, name)
	}
}

// besideDriver returns the driver as berth's commands make it, with its
// accept rules beside other programs' rules.
func besideDriver(name string) func(*nettest.NS) firewall.Driver {
	return func(host *nettest.NS) firewall.Driver {
		d, err := core.NewFirewall(name, host.NetNS)
		if err != nil {
			panic(err)
		}
		return d
	}
}

var besideDrivers = []string{firewall.DriverNftables, firewall.DriverIptables}

// TestPrivilegedBesideOtherFirewalls: with Docker's rules (20.10 and 28)
// or a host's own nftables forward chain of policy drop in the host
// namespace, berth's containers reach the outside and their published
// port is reached from the outside, with either driver; isolation between
// berth's networks holds; and after the last teardown the other program's
// rules are as they were and no rule of berth's is left.
func TestPrivilegedBesideOtherFirewalls(t *testing.T) {
	for _, drv := range besideDrivers {
		for _, other := range otherFirewalls {
			t.Run(drv+"/"+other.name, func(t *testing.T) { testBeside(t, drv, other) })
		}
	}
}

func testBeside(t *testing.T, drv string, other otherFirewall) {
	tp := newTopo(t, besideDriver(drv), nil)
	other.load(t, tp.host)
	before := other.rules(t, tp.host)

	na := bridgeNet("bsda", "bbsda0", "198.19.7.0/24", "198.19.7.1")
	nb := bridgeNet("bsdb", "bbsdb0", "198.19.8.0/24", "198.19.8.1")
	oa := opts("e1", "web", na, "198.19.7.2", network.PortMapping{ContainerPort: 80, HostPort: 8085, Protocol: "tcp", Range: 1})
	ob := opts("e2", "other", nb, "198.19.8.2")
	ca := nettest.NewNS(t, nettest.RandName("ctr"))
	cb := nettest.NewNS(t, nettest.RandName("ctr"))
	ctx := context.Background()
	if _, err := tp.m.Setup(ctx, ca.Path(), oa); err != nil {
		t.Fatal(err)
	}
	if _, err := tp.m.Setup(ctx, cb.Path(), ob); err != nil {
		t.Fatal(err)
	}
	checkTraffic(t, tp, ca, cb)

	if err := tp.m.Teardown(ctx, ca.Path(), oa); err != nil {
		t.Fatal(err)
	}
	if err := tp.m.Teardown(ctx, cb.Path(), ob); err != nil {
		t.Fatal(err)
	}
	if after := other.rules(t, tp.host); after != before {
		t.Errorf("%s's rules after the last teardown:\n%s\nwere\n%s", other.name, after, before)
	}
	all := run(t, tp.host, "nft", "list", "ruleset") + run(t, tp.host, "iptables-nft-save")
	if strings.Contains(all, firewall.MarkPrefix) {
		t.Errorf("berth's rules left after the last teardown:\n%s", all)
	}
}

// checkTraffic checks, from container a (port 80 published on 8085) and b
// on two berth networks: a reaches the outside, the outside reaches a's
// published port, and b does not reach a directly (berth's isolation).
func checkTraffic(t *testing.T, tp *topo, a, b *nettest.NS) {
	t.Helper()
	peers := nettest.ServeBanner(nettest.Listen(t, tp.outside, "tcp4", "198.18.0.2:9000"), "outside")
	if got, err := nettest.Fetch(a, "tcp4", "198.18.0.2:9000"); err != nil || got != "outside" {
		t.Errorf("container to outside: %q, %v", got, err)
	} else if p := <-peers; !strings.HasPrefix(p, "198.18.0.1:") {
		t.Errorf("outside saw %s, want the host's address (masquerade)", p)
	}
	nettest.ServeBanner(nettest.Listen(t, a, "tcp4", "0.0.0.0:80"), "published")
	if got, err := nettest.Fetch(tp.outside, "tcp4", "198.18.0.1:8085"); err != nil || got != "published" {
		t.Errorf("outside to the published port: %q, %v", got, err)
	}
	if _, err := nettest.FetchWithin(b, "tcp4", "198.19.7.2:80", time.Second); err == nil {
		t.Error("a container of another network reached the container directly despite isolation")
	}
}

// TestPrivilegedBesideOtherFirewallStartedLater: the other firewall comes
// after berth's setup (Docker started later) and cuts the container off;
// berth network reload (FirewallReload), or the next container's setup,
// adds berth's accept rules and the traffic flows again.
func TestPrivilegedBesideOtherFirewallStartedLater(t *testing.T) {
	for _, drv := range besideDrivers {
		for _, other := range otherFirewalls {
			for _, how := range []string{"reload", "setup"} {
				t.Run(drv+"/"+other.name+"/"+how, func(t *testing.T) { testStartedLater(t, drv, other, how) })
			}
		}
	}
}

func testStartedLater(t *testing.T, drv string, other otherFirewall, how string) {
	tp := newTopo(t, besideDriver(drv), nil)
	n := bridgeNet("late", "blate0", "198.19.9.0/24", "198.19.9.1")
	ctr, _ := tp.container(t, opts("f1", "late", n, "198.19.9.2", network.PortMapping{ContainerPort: 80, HostPort: 8081, Protocol: "tcp", Range: 1}))
	nettest.ServeBanner(nettest.Listen(t, ctr, "tcp4", "0.0.0.0:80"), "late")
	if got, err := nettest.Fetch(tp.outside, "tcp4", "198.18.0.1:8081"); err != nil || got != "late" {
		t.Fatalf("before %s started: %q, %v", other.name, got, err)
	}
	other.load(t, tp.host)
	if _, err := nettest.FetchWithin(tp.outside, "tcp4", "198.18.0.1:8081", time.Second); err == nil {
		t.Fatalf("%s's rules do not cut the container off: the test proves nothing", other.name)
	}
	switch how {
	case "reload":
		if _, err := tp.m.FirewallReload(context.Background()); err != nil {
			t.Fatal(err)
		}
	case "setup":
		tp.container(t, opts("f2", "late2", n, "198.19.9.3"))
	}
	if got, err := nettest.Fetch(tp.outside, "tcp4", "198.18.0.1:8081"); err != nil || got != "late" {
		t.Errorf("after the %s: %q, %v", how, got, err)
	}
}

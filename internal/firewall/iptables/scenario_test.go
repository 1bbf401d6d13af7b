package iptables

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/network"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the generated golden files (never the ones copied from netavark captures)")

// env is where a scenario runs: the fake kernel or a test namespace.
type env struct {
	d *Driver
	// state returns the filter and nat tables of a family as iptables-save
	// prints them, without counters.
	state func(t *testing.T, f family) string
	// restores returns how many iptables-restore runs there were so far.
	restores func() int
}

// check compares the state of a family with a golden file. Files named
// *.gen.golden were written by this package (go test -update); the others
// are netavark 1.4 captures and must match as they are.
func (e env) check(t *testing.T, f family, file string) {
	t.Helper()
	got := e.state(t, f)
	if *update && strings.Contains(file, ".gen.") {
		if err := os.WriteFile(filepath.Join("testdata", file), []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(file, ".gen.") {
		// A netavark 1.4 capture: the layout matches it but for what
		// netavark 2.x added (NETAVARK_INPUT), checked on its own.
		got = withoutNetavark2Input(got)
	}
	if diff := cmp.Diff(golden(t, file), got); diff != "" {
		t.Errorf("%s rules differ from %s (-want +got):\n%s", f, file, diff)
	}
}

// netavark2Input reports whether a rule or chain line belongs to
// NETAVARK_INPUT, the chain netavark 2.x added to the 1.x layout.
func netavark2Input(line string) bool {
	return strings.Contains(line, chainNetavarkInput)
}

// withoutNetavark2Input drops the NETAVARK_INPUT lines from an
// iptables-save dump.
func withoutNetavark2Input(dump string) string {
	var keep []string
	for _, l := range strings.Split(dump, "\n") {
		if !netavark2Input(l) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// checkEmpty checks that a family has no filter or nat rules or chains
// beyond the built-in ones.
func (e env) checkEmpty(t *testing.T, f family) {
	t.Helper()
	if got, want := e.state(t, f), newRuleset().render(tableFilter, tableNAT); got != want {
		t.Errorf("%s rules left after reset:\n%s", f, got)
	}
}

// noop runs fn and fails if it ran iptables-restore.
func (e env) noop(t *testing.T, what string, fn func() error) {
	t.Helper()
	n := e.restores()
	if err := fn(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if m := e.restores() - n; m != 0 {
		t.Errorf("%s ran iptables-restore %d times, want 0 (nothing to change)", what, m)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// scenarioBridgePorts replays examples/iptables-bridge-ports.txt: a
// container without ports, then one with two mappings on the same network,
// torn down in turn.
func scenarioBridgePorts(t *testing.T, e env) {
	dns := loadInput(t, "bridge-dns-input.json", 53)
	ports := loadInput(t, "bridge-ports-input.json", 53)
	must(t, "setup dns container", e.d.Setup(dns.nets, dns.ports))
	must(t, "setup ports container", e.d.Setup(ports.nets, ports.ports))
	e.check(t, ipv4, "bridge-ports.v4.golden")
	e.checkEmpty(t, ipv6)
	e.noop(t, "setup again", func() error { return e.d.Setup(ports.nets, ports.ports) })

	// The ports container leaves first; the network is still in use.
	must(t, "teardown ports container", e.d.Teardown(ports.ports, nil))
	e.noop(t, "teardown again", func() error { return e.d.Teardown(ports.ports, nil) })
	// The last container leaves: complete teardown.
	must(t, "teardown dns container", e.d.Teardown(dns.ports, dns.nets))
	e.check(t, ipv4, "bridge-ports-teardown.v4.golden")
	e.noop(t, "complete teardown again", func() error { return e.d.Teardown(dns.ports, dns.nets) })

	must(t, "reset", e.d.Reset())
	e.checkEmpty(t, ipv4)
	e.checkEmpty(t, ipv6)
}

// scenarioThreeNetworks replays examples/iptables-three-networks.txt: one
// container on two isolated networks (one dual-stack) and an internal one.
func scenarioThreeNetworks(t *testing.T, e env) {
	in := loadInput(t, "three-networks-input.json", 53)
	must(t, "setup", e.d.Setup(in.nets, in.ports))
	e.check(t, ipv4, "three-networks.v4.golden")
	e.check(t, ipv6, "three-networks.v6.golden")
	e.noop(t, "setup again", func() error { return e.d.Setup(in.nets, in.ports) })

	must(t, "teardown", e.d.Teardown(in.ports, in.nets))
	e.check(t, ipv4, "three-networks-teardown.v4.gen.golden")
	e.check(t, ipv6, "three-networks-teardown.v6.gen.golden")

	must(t, "reset", e.d.Reset())
	e.checkEmpty(t, ipv4)
	e.checkEmpty(t, ipv6)
	e.noop(t, "reset again", e.d.Reset)
}

// strictInput is a strict dual-stack network, an isolated one and an open
// one, all with aardvark on port 5353, and one container on each.
func strictInput() (open, strict, iso firewall.NetworkRules, ports []firewall.PortForward) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	open = firewall.NetworkRules{
		ID: "1111aaaa", Name: "open1", Bridge: "bopen",
		Subnets: []netip.Prefix{p("198.18.2.0/24")}, Gateways: []netip.Addr{a("198.18.2.1")},
		DNSPort: 5353,
	}
	strict = firewall.NetworkRules{
		ID: "2222bbbb", Name: "strict1", Bridge: "bstrict",
		Subnets:   []netip.Prefix{p("198.18.1.0/24"), p("fd10:91::/64")},
		Gateways:  []netip.Addr{a("198.18.1.1"), a("fd10:91::1")},
		Isolation: network.IsolateStrict, DNSPort: 5353,
	}
	iso = firewall.NetworkRules{
		ID: "3333cccc", Name: "iso1", Bridge: "biso",
		Subnets: []netip.Prefix{p("198.18.3.0/24")}, Gateways: []netip.Addr{a("198.18.3.1")},
		Isolation: network.IsolateTrue,
	}
	ports = []firewall.PortForward{
		{
			NetworkID: open.ID, NetworkName: open.Name, ContainerID: "c0ffee01", IPv4: a("198.18.2.5"),
			Mappings: []network.PortMapping{
				{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
				{HostIP: "198.18.2.1", HostPort: 9000, ContainerPort: 90, Range: 2, Protocol: "sctp"},
			},
		},
		{
			NetworkID: strict.ID, NetworkName: strict.Name, ContainerID: "c0ffee02",
			IPv4: a("198.18.1.5"), IPv6: a("fd10:91::5"),
			Mappings: []network.PortMapping{
				{HostPort: 5000, ContainerPort: 5000, Range: 3, Protocol: "udp"},
				{HostIP: "fd10:91::1", HostPort: 8443, ContainerPort: 443, Protocol: "tcp"},
				{HostIP: "0.0.0.0", HostPort: 8053, ContainerPort: 53, Protocol: "udp"},
			},
		},
	}
	return open, strict, iso, ports
}

// scenarioStrictDNS covers what the captures do not: strict isolation
// (NETAVARK_ISOLATION_3), the DNS redirect for a DNS port other than 53,
// sctp, host IPs of both families and a second subnet family.
func scenarioStrictDNS(t *testing.T, e env) {
	open, strict, iso, ports := strictInput()
	must(t, "setup open network", e.d.Setup([]firewall.NetworkRules{open}, ports[:1]))
	must(t, "setup strict and isolated networks", e.d.Setup([]firewall.NetworkRules{strict, iso}, ports[1:]))
	// The open network existed before NETAVARK_ISOLATION_3 did; its next
	// setup adds its DROP rule there.
	must(t, "setup open network again", e.d.Setup([]firewall.NetworkRules{open}, nil))
	e.check(t, ipv4, "strict-dns.v4.gen.golden")
	e.check(t, ipv6, "strict-dns.v6.gen.golden")
	e.noop(t, "setup all again", func() error {
		return e.d.Setup([]firewall.NetworkRules{open, strict, iso}, ports)
	})

	// Tearing down the strict network keeps NETAVARK_ISOLATION_1 in use by
	// the isolated one, so the FORWARD jump stays.
	must(t, "teardown strict", e.d.Teardown(ports[1:], []firewall.NetworkRules{strict}))
	const isoJump = "-A FORWARD -j NETAVARK_ISOLATION_1\n"
	if !strings.Contains(e.state(t, ipv4), isoJump) {
		t.Errorf("IPv4 FORWARD jump to NETAVARK_ISOLATION_1 gone while network iso1 is isolated:\n%s", e.state(t, ipv4))
	}
	if strings.Contains(e.state(t, ipv6), isoJump) {
		t.Errorf("IPv6 FORWARD jump to NETAVARK_ISOLATION_1 left without isolated networks:\n%s", e.state(t, ipv6))
	}
	must(t, "teardown open and isolated", e.d.Teardown(ports[:1], []firewall.NetworkRules{open, iso}))
	e.check(t, ipv4, "strict-dns-teardown.v4.gen.golden")
	e.check(t, ipv6, "strict-dns-teardown.v6.gen.golden")

	must(t, "reset", e.d.Reset())
	e.checkEmpty(t, ipv4)
	e.checkEmpty(t, ipv6)
}

// scenarioRollback makes the IPv6 restore fail and checks that Setup
// removed the IPv4 rules it had added, and nothing else.
func scenarioRollback(t *testing.T, e env, breakV6 func()) {
	dns := loadInput(t, "bridge-dns-input.json", 53)
	must(t, "setup v4 network", e.d.Setup(dns.nets, dns.ports))
	before4, before6 := e.state(t, ipv4), e.state(t, ipv6)
	in := loadInput(t, "three-networks-input.json", 53)
	breakV6()
	if err := e.d.Setup(in.nets, in.ports); err == nil {
		t.Fatal("setup with a failing ip6tables-restore: no error")
	} else {
		t.Logf("setup failed as wanted: %v", err)
	}
	if diff := cmp.Diff(before4, e.state(t, ipv4)); diff != "" {
		t.Errorf("failed setup left IPv4 changes (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(before6, e.state(t, ipv6)); diff != "" {
		t.Errorf("failed setup left IPv6 changes (-before +after):\n%s", diff)
	}
}

func fakeEnv(t *testing.T) (env, *fakeKernel) {
	k := newFakeKernel()
	return env{
		d: k.driver(t),
		state: func(t *testing.T, f family) string {
			return k.rs[f].render(tableFilter, tableNAT)
		},
		restores: func() int { return k.count("iptables-restore") + k.count("ip6tables-restore") },
	}, k
}

func TestBridgePorts(t *testing.T) {
	e, k := fakeEnv(t)
	scenarioBridgePorts(t, e)
	for _, c := range k.calls {
		if strings.HasPrefix(c, "ip6tables") && !strings.HasPrefix(c, "ip6tables-save") {
			t.Errorf("IPv4-only scenario ran %q", c)
		}
	}
}

func TestThreeNetworks(t *testing.T) {
	e, k := fakeEnv(t)
	in := loadInput(t, "three-networks-input.json", 53)
	must(t, "setup", e.d.Setup(in.nets, in.ports))
	want := []string{
		"iptables-save", "ip6tables-save",
		"iptables-restore --noflush --wait", "ip6tables-restore --noflush --wait",
	}
	if diff := cmp.Diff(want, k.calls); diff != "" {
		t.Errorf("setup commands (-want +got):\n%s", diff)
	}
	e2, _ := fakeEnv(t)
	scenarioThreeNetworks(t, e2)
}

func TestStrictDNS(t *testing.T) {
	e, _ := fakeEnv(t)
	scenarioStrictDNS(t, e)
}

func TestSetupRollback(t *testing.T) {
	e, k := fakeEnv(t)
	scenarioRollback(t, e, func() {
		k.fail = func(name string) error {
			if name == "ip6tables-restore" {
				return os.ErrPermission
			}
			return nil
		}
	})
	n := 0
	for _, c := range k.calls {
		if strings.HasPrefix(c, "iptables-restore") {
			n++
		}
	}
	if n != 3 { // setup of the first network, setup, undo
		t.Errorf("iptables-restore ran %d times, want 3: %q", n, k.calls)
	}
}

package iptables

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/network"
	"github.com/google/go-cmp/cmp"
)

func TestChainHash(t *testing.T) {
	for name, want := range map[string]string{
		"podman1": "F11DC6A6D09CF", // netavark.md §3.5
		"a1net1":  "E9D4DA031A41A", // examples/iptables-three-networks.txt
		"a1net2":  "80B4F83F65B52",
	} {
		if got := ChainHash(name); got != want {
			t.Errorf("ChainHash(%q) = %s, want %s", name, got, want)
		}
	}
}

func lines(rules []rule) []string {
	var out []string
	for _, r := range rules {
		out = append(out, r.String())
	}
	return out
}

// exampleLines returns the rules of a golden file as "table -A ..." lines.
func exampleLines(t *testing.T, file string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	tbl := ""
	for _, l := range strings.Split(golden(t, file), "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			tbl = l[1:]
		case strings.HasPrefix(l, "-A "):
			out[tbl+" "+l] = true
		}
	}
	return out
}

// TestRulesInExample checks every generated rule, line by line, against the
// netavark 1.4 capture it must reproduce.
func TestRulesInExample(t *testing.T) {
	in := loadInput(t, "three-networks-input.json", 53)
	for _, tc := range []struct {
		f    family
		file string
	}{{ipv4, "three-networks.v4.golden"}, {ipv6, "three-networks.v6.golden"}} {
		want := exampleLines(t, tc.file)
		var got []rule
		for i, n := range in.nets {
			got = append(got, networkRules(n, tc.f, false)...)
			got = append(got, hostportRules()...)
			if s := subnets(n, tc.f); len(s) > 0 {
				got = append(got, portRules(in.ports[i], tc.f, s[0])...)
			}
		}
		generated := map[string]bool{}
		for _, l := range lines(got) {
			if netavark2Input(l) {
				continue // netavark 2.x's addition to the 1.4 layout
			}
			if !want[l] {
				t.Errorf("%s: generated rule not in %s: %s", tc.f, tc.file, l)
			}
			generated[l] = true
		}
		for l := range want {
			if !generated[l] {
				t.Errorf("%s: rule of %s not generated: %s", tc.f, tc.file, l)
			}
		}
	}
}

func TestNetworkRules(t *testing.T) {
	n := firewall.NetworkRules{
		Name: "podman1", Bridge: "br0", Isolation: network.IsolateStrict,
		Subnets: []netip.Prefix{netip.MustParsePrefix("198.18.0.7/24"), netip.MustParsePrefix("fd10:91::/64")},
	}
	want := []string{
		"nat -A NETAVARK-F11DC6A6D09CF -d 198.18.0.0/24 -j ACCEPT",
		"nat -A NETAVARK-F11DC6A6D09CF ! -d 224.0.0.0/4 -j MASQUERADE",
		"nat -A POSTROUTING -s 198.18.0.0/24 -j NETAVARK-F11DC6A6D09CF",
		"filter -A FORWARD -j NETAVARK_ISOLATION_1",
		"filter -A NETAVARK_ISOLATION_1 -i br0 ! -o br0 -j NETAVARK_ISOLATION_3",
		"filter -A NETAVARK_ISOLATION_2 -o br0 -j DROP",
		"filter -A NETAVARK_ISOLATION_3 -j NETAVARK_ISOLATION_2",
		`filter -A FORWARD -m comment --comment "netavark firewall plugin rules" -j NETAVARK_FORWARD`,
		"filter -A NETAVARK_FORWARD -d 198.18.0.0/24 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		"filter -A NETAVARK_FORWARD -s 198.18.0.0/24 -j ACCEPT",
		`filter -A INPUT -m comment --comment "netavark firewall rules" -j NETAVARK_INPUT`,
		"filter -A NETAVARK_INPUT -s 198.18.0.0/24 -p udp -m udp --dport 53 -j ACCEPT",
	}
	got := networkRules(n, ipv4, false)
	if diff := cmp.Diff(want, lines(got)); diff != "" {
		t.Errorf("strict network (-want +got):\n%s", diff)
	}
	for _, r := range got {
		if r.chain == chainForward && strings.Contains(r.spec, chainNetavarkForward) && r.insert != 2 {
			t.Errorf("FORWARD jump of an isolated network inserted at %d, want 2", r.insert)
		}
	}

	n.Isolation = network.IsolateNone
	got6 := lines(networkRules(n, ipv6, true))
	want6 := []string{
		"nat -A NETAVARK-F11DC6A6D09CF -d fd10:91::/64 -j ACCEPT",
		"nat -A NETAVARK-F11DC6A6D09CF ! -d ff00::/8 -j MASQUERADE",
		"nat -A POSTROUTING -s fd10:91::/64 -j NETAVARK-F11DC6A6D09CF",
		"filter -A NETAVARK_ISOLATION_3 -o br0 -j DROP",
		"filter -A NETAVARK_ISOLATION_3 -j NETAVARK_ISOLATION_2",
		`filter -A FORWARD -m comment --comment "netavark firewall plugin rules" -j NETAVARK_FORWARD`,
		"filter -A NETAVARK_FORWARD -d fd10:91::/64 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		"filter -A NETAVARK_FORWARD -s fd10:91::/64 -j ACCEPT",
		`filter -A INPUT -m comment --comment "netavark firewall rules" -j NETAVARK_INPUT`,
		"filter -A NETAVARK_INPUT -s fd10:91::/64 -p udp -m udp --dport 53 -j ACCEPT",
	}
	if diff := cmp.Diff(want6, got6); diff != "" {
		t.Errorf("open network with strict ones around, IPv6 (-want +got):\n%s", diff)
	}
	if got := networkRules(n, ipv4, false); len(got) != 8 {
		t.Errorf("open network without strict ones: %d rules, want 8 (no isolation):\n%s", len(got), strings.Join(lines(got), "\n"))
	}
	n.DNSPort = 5353
	if got := lines(networkRules(n, ipv4, false)); got[len(got)-1] != "filter -A NETAVARK_INPUT -s 198.18.0.0/24 -p udp -m udp --dport 5353 -j ACCEPT" {
		t.Errorf("DNS on port 5353: the INPUT rule is %q", got[len(got)-1])
	}
}

func TestDNSRules(t *testing.T) {
	n := firewall.NetworkRules{
		Name:     "n",
		Gateways: []netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("fd10:91::1")},
	}
	for _, port := range []uint16{0, 53} {
		n.DNSPort = port
		if got := dnsRules(n, ipv4); len(got) != 0 {
			t.Errorf("DNS port %d: got rules %q", port, lines(got))
		}
	}
	n.DNSPort = 1053
	want := []string{
		"nat -A NETAVARK-HOSTPORT-DNAT -d fd10:91::1/128 -p udp -m udp --dport 53 -j DNAT --to-destination [fd10:91::1]:1053",
		"nat -A NETAVARK-HOSTPORT-DNAT -d fd10:91::1/128 -p tcp -m tcp --dport 53 -j DNAT --to-destination [fd10:91::1]:1053",
	}
	if diff := cmp.Diff(want, lines(dnsRules(n, ipv6))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestPortRules(t *testing.T) {
	pf := firewall.PortForward{
		NetworkName: "podman1", ContainerID: "ctr",
		IPv4: netip.MustParseAddr("198.18.0.5"), IPv6: netip.MustParseAddr("fd10:91::5"),
		Mappings: []network.PortMapping{
			{HostIP: "::", HostPort: 80, ContainerPort: 8080, Protocol: "TCP"},
			{HostIP: "0.0.0.0", HostPort: 81, ContainerPort: 81, Protocol: "sctp", Range: 2},
			{HostIP: "198.18.0.1", HostPort: 82, ContainerPort: 82, Protocol: "udp"},
		},
	}
	want4 := []string{
		`nat -A NETAVARK-HOSTPORT-DNAT -p sctp -m sctp --dport 81:82 -m comment --comment "dnat name: podman1 id: ctr" -j NETAVARK-DN-F11DC6A6D09CF`,
		"nat -A NETAVARK-DN-F11DC6A6D09CF -s 198.18.0.0/24 -p sctp -m sctp --dport 81:82 -j NETAVARK-HOSTPORT-SETMARK",
		"nat -A NETAVARK-DN-F11DC6A6D09CF -s 127.0.0.1/32 -p sctp -m sctp --dport 81:82 -j NETAVARK-HOSTPORT-SETMARK",
		"nat -A NETAVARK-DN-F11DC6A6D09CF -p sctp -m sctp --dport 81:82 -j DNAT --to-destination 198.18.0.5:81-82/81",
		`nat -A NETAVARK-HOSTPORT-DNAT -p udp -m udp --dport 82 -m comment --comment "dnat name: podman1 id: ctr" -j NETAVARK-DN-F11DC6A6D09CF`,
		"nat -A NETAVARK-DN-F11DC6A6D09CF -s 198.18.0.0/24 -d 198.18.0.1/32 -p udp -m udp --dport 82 -j NETAVARK-HOSTPORT-SETMARK",
		"nat -A NETAVARK-DN-F11DC6A6D09CF -s 127.0.0.1/32 -d 198.18.0.1/32 -p udp -m udp --dport 82 -j NETAVARK-HOSTPORT-SETMARK",
		"nat -A NETAVARK-DN-F11DC6A6D09CF -d 198.18.0.1/32 -p udp -m udp --dport 82 -j DNAT --to-destination 198.18.0.5:82",
	}
	if diff := cmp.Diff(want4, lines(portRules(pf, ipv4, netip.MustParsePrefix("198.18.0.0/24")))); diff != "" {
		t.Errorf("IPv4 (-want +got):\n%s", diff)
	}
	want6 := []string{
		`nat -A NETAVARK-HOSTPORT-DNAT -p tcp -m tcp --dport 80 -m comment --comment "dnat name: podman1 id: ctr" -j NETAVARK-DN-F11DC6A6D09CF`,
		"nat -A NETAVARK-DN-F11DC6A6D09CF -s ::1/128 -p tcp -m tcp --dport 80 -j NETAVARK-HOSTPORT-SETMARK",
		"nat -A NETAVARK-DN-F11DC6A6D09CF -p tcp -m tcp --dport 80 -j DNAT --to-destination [fd10:91::5]:8080",
	}
	// Without a subnet (Teardown that cannot find it) the hairpin rule is left out.
	if diff := cmp.Diff(want6, lines(portRules(pf, ipv6, netip.Prefix{}))); diff != "" {
		t.Errorf("IPv6 (-want +got):\n%s", diff)
	}

	pf.IPv6 = netip.Addr{}
	if got := portRules(pf, ipv6, netip.Prefix{}); len(got) != 0 {
		t.Errorf("container without IPv6 address got IPv6 rules %q", lines(got))
	}
}

func TestParseSave(t *testing.T) {
	const in = `# Generated by iptables-save v1.8.9
*nat
:PREROUTING ACCEPT [12:720]
:POSTROUTING ACCEPT [0:0]
:NETAVARK-X - [0:0]
[3:180] -A POSTROUTING   -s 198.18.0.0/24  -j NETAVARK-X
-A NETAVARK-X -m comment --comment "a b" -j MASQUERADE
COMMIT
# Completed
`
	rs, err := parseSave([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := rs.chain(tableNAT, chainPostrouting).rules; !cmp.Equal(got, []string{"-s 198.18.0.0/24 -j NETAVARK-X"}) {
		t.Errorf("POSTROUTING rules %q", got)
	}
	if c := rs.chain(tableNAT, "NETAVARK-X"); c == nil || c.builtin || len(c.rules) != 1 {
		t.Errorf("NETAVARK-X = %+v", c)
	}
	if rs.chain(tableFilter, chainForward) != nil {
		t.Error("filter table appeared from nowhere")
	}
	for _, bad := range []string{"-A FORWARD -j X\n", "*filter\n-A NOPE -j X\n", "*filter\n:\n", "*filter\nrubbish\n"} {
		if _, err := parseSave([]byte(bad)); err == nil {
			t.Errorf("parseSave(%q): no error", bad)
		}
	}
}

// TestSetupScript checks the script Setup hands to iptables-restore when
// some of the shared chains exist with foreign rules: existing chains are
// not declared again (which would flush them), present rules are skipped.
func TestSetupScript(t *testing.T) {
	current, err := parseSave([]byte(`*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
:NETAVARK_FORWARD - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -m comment --comment "netavark firewall plugin rules" -j NETAVARK_FORWARD
-A NETAVARK_FORWARD -s 198.18.9.0/24 -j ACCEPT
COMMIT
`))
	if err != nil {
		t.Fatal(err)
	}
	n := firewall.NetworkRules{
		Name: "podman1", Bridge: "br0", Isolation: network.IsolateTrue,
		Subnets: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")},
	}
	p, err := planSetup(current, ipv4, []firewall.NetworkRules{n}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `*filter
:NETAVARK_ISOLATION_1 - [0:0]
:NETAVARK_ISOLATION_2 - [0:0]
:NETAVARK_INPUT - [0:0]
-I FORWARD 1 -j NETAVARK_ISOLATION_1
-I NETAVARK_ISOLATION_1 1 -i br0 ! -o br0 -j NETAVARK_ISOLATION_2
-I NETAVARK_ISOLATION_2 1 -o br0 -j DROP
-A NETAVARK_FORWARD -d 198.18.0.0/24 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A NETAVARK_FORWARD -s 198.18.0.0/24 -j ACCEPT
-I INPUT 1 -m comment --comment "netavark firewall rules" -j NETAVARK_INPUT
-A NETAVARK_INPUT -s 198.18.0.0/24 -p udp -m udp --dport 53 -j ACCEPT
COMMIT
*nat
:NETAVARK-F11DC6A6D09CF - [0:0]
:NETAVARK-HOSTPORT-SETMARK - [0:0]
:NETAVARK-HOSTPORT-MASQ - [0:0]
:NETAVARK-HOSTPORT-DNAT - [0:0]
-A NETAVARK-F11DC6A6D09CF -d 198.18.0.0/24 -j ACCEPT
-A NETAVARK-F11DC6A6D09CF ! -d 224.0.0.0/4 -j MASQUERADE
-A POSTROUTING -s 198.18.0.0/24 -j NETAVARK-F11DC6A6D09CF
-A NETAVARK-HOSTPORT-SETMARK -j MARK --set-xmark 0x2000/0x2000
-A NETAVARK-HOSTPORT-MASQ -m comment --comment "netavark portfw masq mark" -m mark --mark 0x2000/0x2000 -j MASQUERADE
-I POSTROUTING 1 -j NETAVARK-HOSTPORT-MASQ
-A PREROUTING -m addrtype --dst-type LOCAL -j NETAVARK-HOSTPORT-DNAT
-A OUTPUT -m addrtype --dst-type LOCAL -j NETAVARK-HOSTPORT-DNAT
COMMIT
`
	if diff := cmp.Diff(want, string(p.restoreScript())); diff != "" {
		t.Errorf("restore script (-want +got):\n%s", diff)
	}
	wantUndo := `*filter
-D NETAVARK_INPUT -s 198.18.0.0/24 -p udp -m udp --dport 53 -j ACCEPT
-D INPUT -m comment --comment "netavark firewall rules" -j NETAVARK_INPUT
-D NETAVARK_FORWARD -s 198.18.0.0/24 -j ACCEPT
-D NETAVARK_FORWARD -d 198.18.0.0/24 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-D NETAVARK_ISOLATION_2 -o br0 -j DROP
-D NETAVARK_ISOLATION_1 -i br0 ! -o br0 -j NETAVARK_ISOLATION_2
-D FORWARD -j NETAVARK_ISOLATION_1
-X NETAVARK_INPUT
-X NETAVARK_ISOLATION_2
-X NETAVARK_ISOLATION_1
COMMIT
*nat
-D OUTPUT -m addrtype --dst-type LOCAL -j NETAVARK-HOSTPORT-DNAT
-D PREROUTING -m addrtype --dst-type LOCAL -j NETAVARK-HOSTPORT-DNAT
-D POSTROUTING -j NETAVARK-HOSTPORT-MASQ
-D NETAVARK-HOSTPORT-MASQ -m comment --comment "netavark portfw masq mark" -m mark --mark 0x2000/0x2000 -j MASQUERADE
-D NETAVARK-HOSTPORT-SETMARK -j MARK --set-xmark 0x2000/0x2000
-D POSTROUTING -s 198.18.0.0/24 -j NETAVARK-F11DC6A6D09CF
-D NETAVARK-F11DC6A6D09CF ! -d 224.0.0.0/4 -j MASQUERADE
-D NETAVARK-F11DC6A6D09CF -d 198.18.0.0/24 -j ACCEPT
-X NETAVARK-HOSTPORT-DNAT
-X NETAVARK-HOSTPORT-MASQ
-X NETAVARK-HOSTPORT-SETMARK
-X NETAVARK-F11DC6A6D09CF
COMMIT
`
	if diff := cmp.Diff(wantUndo, string(p.undoScript())); diff != "" {
		t.Errorf("undo script (-want +got):\n%s", diff)
	}
	// Applying the script and then the undo gives back the start.
	after, err := applyRestore(current, string(p.restoreScript()))
	if err != nil {
		t.Fatal(err)
	}
	back, err := applyRestore(after, string(p.undoScript()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(current.render(tableFilter, tableNAT), back.render(tableFilter, tableNAT)); diff != "" {
		t.Errorf("undo did not restore the start (-want +got):\n%s", diff)
	}
}

func TestSetupUnknownSubnet(t *testing.T) {
	pf := firewall.PortForward{
		NetworkName: "gone", ContainerID: "ctr", IPv4: netip.MustParseAddr("198.18.0.5"),
		Mappings: []network.PortMapping{{HostPort: 80, ContainerPort: 80, Protocol: "tcp"}},
	}
	if _, err := planSetup(newRuleset(), ipv4, nil, []firewall.PortForward{pf}); err == nil {
		t.Error("port forward on a network that was never set up: no error")
	}
}

// TestTeardownFindsSubnet tears down ports of a network that is not passed
// in, with only its NETAVARK-DN chain left to tell its subnet.
func TestTeardownFindsSubnet(t *testing.T) {
	in := loadInput(t, "bridge-ports-input.json", 53)
	k := newFakeKernel()
	d := k.driver(t)
	must(t, "setup", d.Setup(in.nets, in.ports))
	rs := k.rs[ipv4]
	pr := rs.chain(tableNAT, chainPostrouting)
	var kept []string
	for _, r := range pr.rules {
		if !strings.HasPrefix(r, "-s ") {
			kept = append(kept, r)
		}
	}
	pr.rules = kept
	must(t, "teardown", d.Teardown(in.ports, nil))
	if c := k.rs[ipv4].chain(tableNAT, dnatChain("podman1")); c != nil && len(c.rules) != 0 {
		t.Errorf("rules left in NETAVARK-DN chain:\n%s", k.rs[ipv4].render(tableNAT))
	}
}

// TestResetKeepsForeignRules checks that Reset removes only NETAVARK
// chains and the jumps to them.
func TestResetKeepsForeignRules(t *testing.T) {
	foreign := `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A DOCKER-USER -s 198.18.5.0/24 -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 198.18.6.0/24 -j MASQUERADE
COMMIT
`
	k := newFakeKernel()
	rs, err := parseSave([]byte(foreign))
	if err != nil {
		t.Fatal(err)
	}
	k.rs[ipv4] = rs
	d := k.driver(t)
	in := loadInput(t, "three-networks-input.json", 53)
	must(t, "setup", d.Setup(in.nets, in.ports))
	// A rule of someone else's chain jumping to ours goes too.
	k.rs[ipv4].chain(tableFilter, "DOCKER-USER").rules = append(k.rs[ipv4].chain(tableFilter, "DOCKER-USER").rules, "-j NETAVARK_FORWARD")
	must(t, "reset", d.Reset())
	if diff := cmp.Diff(foreign, k.rs[ipv4].render(tableFilter, tableNAT)); diff != "" {
		t.Errorf("reset changed foreign rules (-want +got):\n%s", diff)
	}
	if got := k.rs[ipv6].render(tableFilter, tableNAT); strings.Contains(got, chainPrefix) {
		t.Errorf("IPv6 rules left:\n%s", got)
	}
}

func TestNew(t *testing.T) {
	d, err := New(Options{Run: newFakeKernel().run})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != firewall.DriverIptables {
		t.Errorf("Name() = %q", d.Name())
	}
	if _, err := New(Options{Save: "/nonexistent/iptables-save"}); err == nil {
		t.Error("New with a missing binary: no error")
	}
	var got []string
	d, err = New(Options{NetNSPath: "/run/netns/x", Run: func(name string, args []string, _ []byte) ([]byte, error) {
		got = append([]string{name}, args...)
		return nil, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.save(ipv6); err != nil {
		t.Fatal(err)
	}
	if want := []string{"nsenter", "--net=/run/netns/x", "ip6tables-save"}; !cmp.Equal(want, got) {
		t.Errorf("command %q, want %q", got, want)
	}
}

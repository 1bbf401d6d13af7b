package firewalld

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/network"
)

var (
	netA = firewall.NetworkRules{ID: strings.Repeat("a", 64), Name: "a", Bridge: "podman1",
		Subnets:  []netip.Prefix{netip.MustParsePrefix("10.89.3.0/24"), netip.MustParsePrefix("fd10:88:a::/64")},
		Gateways: []netip.Addr{netip.MustParseAddr("10.89.3.1"), netip.MustParseAddr("fd10:88:a::1")}, DNSPort: 5353}
	pfA = firewall.PortForward{NetworkID: netA.ID, ContainerID: strings.Repeat("1", 64),
		IPv4: netip.MustParseAddr("10.89.3.2"), IPv6: netip.MustParseAddr("fd10:88:a::2"),
		Mappings: []network.PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp", Range: 1}}}
	pfB = firewall.PortForward{NetworkID: netA.ID, ContainerID: strings.Repeat("2", 64), IPv4: netip.MustParseAddr("10.89.3.3"),
		Mappings: []network.PortMapping{{HostPort: 9000, ContainerPort: 90, Protocol: "udp", Range: 3, HostIP: "127.0.0.1"}}}
)

func TestSetupMakesTheObjectsOnceThenOnlyAdds(t *testing.T) {
	f := newFake()
	d := New(Options{API: f})
	if err := d.Setup([]firewall.NetworkRules{netA}, []firewall.PortForward{pfA}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"addZone netavark_zone",
		"addPolicy netavark_policy netavark_zone->ANY ACCEPT masquerade=true",
		"addPolicy netavark_portfwd ANY->ANY CONTINUE masquerade=false",
		"addPolicy netavark_host_fwd HOST->ANY CONTINUE masquerade=false",
		"addPolicy netavark_zone_acc ANY->netavark_zone CONTINUE masquerade=true",
		"reload",
		"changeZoneOfSource netavark_zone 10.89.3.0/24",
		"changeZoneOfSource netavark_zone fd10:88:a::/64",
		"setPolicySettings netavark_portfwd forward=2 rich=2",
		"setPolicySettings netavark_host_fwd forward=0 rich=1",
	}
	if diff := cmp.Diff(want, f.calls); diff != "" {
		t.Errorf("calls of the first setup (-want +got):\n%s", diff)
	}
	got := f.policies[PolicyPorts].Rules
	wantPorts := Rules{
		ForwardPorts: []ForwardPort{{"8080", "tcp", "80", "10.89.3.2"}, {"8080", "tcp", "80", "fd10:88:a::2"}},
		RichRules: []string{
			`rule family="ipv4" destination address="10.89.3.1" forward-port port="53" protocol="udp" to-port="5353" to-addr="10.89.3.1"`,
			`rule family="ipv6" destination address="fd10:88:a::1" forward-port port="53" protocol="udp" to-port="5353" to-addr="fd10:88:a::1"`,
		},
	}
	if diff := cmp.Diff(wantPorts, got); diff != "" {
		t.Errorf("netavark_portfwd (-want +got):\n%s", diff)
	}

	// The same setup again changes nothing; another container only adds.
	f.calls = nil
	if err := d.Setup([]firewall.NetworkRules{netA}, []firewall.PortForward{pfA}); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 0 {
		t.Errorf("a repeated setup changed firewalld: %q", f.calls)
	}
	if err := d.Setup([]firewall.NetworkRules{netA}, []firewall.PortForward{pfB}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"setPolicySettings netavark_host_fwd forward=0 rich=2"}, f.calls); diff != "" {
		t.Errorf("calls of a second container's setup (-want +got):\n%s", diff)
	}
}

// A zone and policies that exist only in the permanent configuration
// (firewalld was reloaded without them running, or they were added with
// --permanent) are brought in by a reload, not added again.
func TestSetupReloadsForPermanentOnlyObjects(t *testing.T) {
	f := newFake()
	d := New(Options{API: f})
	if err := ensureObjects(f); err != nil {
		t.Fatal(err)
	}
	f.zones, f.policies, f.calls = map[string][]string{"public": nil}, map[string]*fakePolicy{}, nil
	if err := d.Setup([]firewall.NetworkRules{netA}, nil); err != nil {
		t.Fatal(err)
	}
	if f.calls[0] != "reload" {
		t.Errorf("calls: %q, want a reload first and no additions", f.calls)
	}
}

func TestTeardownTakesBackOnlyWhatSetupAdded(t *testing.T) {
	f := newFake()
	d := New(Options{API: f})
	if err := ensureObjects(f); err != nil {
		t.Fatal(err)
	}
	// The administrator's: a forward of the policy, a subnet in trusted.
	foreignFwd := ForwardPort{"2222", "tcp", "22", "192.0.2.9"}
	f.policies[PolicyPorts].ForwardPorts = []ForwardPort{foreignFwd}
	f.zones["trusted"] = []string{"10.99.0.0/16"}
	other := firewall.NetworkRules{Name: "other", Subnets: []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")}}

	if err := d.Setup([]firewall.NetworkRules{netA, other}, []firewall.PortForward{pfA, pfB}); err != nil {
		t.Fatal(err)
	}
	if z, _ := f.ZoneOfSource("10.99.0.0/16"); z != "trusted" {
		t.Errorf("the trusted zone's subnet moved to %q", z)
	}
	// One container leaves, the network stays: its forwards go, the DNS
	// redirects and sources stay.
	if err := d.Teardown([]firewall.PortForward{pfA}, nil); err != nil {
		t.Fatal(err)
	}
	ports := f.policies[PolicyPorts].Rules
	if diff := cmp.Diff([]ForwardPort{foreignFwd}, ports.ForwardPorts); diff != "" {
		t.Errorf("forwards after the first container left (-want +got):\n%s", diff)
	}
	if len(ports.RichRules) != 2 || len(f.policies[PolicyLocal].RichRules) != 1 {
		t.Errorf("rich rules after the first container left: %q %q", ports.RichRules, f.policies[PolicyLocal].RichRules)
	}
	// The last container and the network go.
	if err := d.Teardown([]firewall.PortForward{pfB}, []firewall.NetworkRules{netA, other}); err != nil {
		t.Fatal(err)
	}
	if got := f.policies[PolicyPorts].Rules; len(got.RichRules) != 0 || !slices.Equal(got.ForwardPorts, []ForwardPort{foreignFwd}) {
		t.Errorf("netavark_portfwd after the last teardown: %+v", got)
	}
	if got := f.policies[PolicyLocal].RichRules; len(got) != 0 {
		t.Errorf("netavark_host_fwd after the last teardown: %q", got)
	}
	if s := f.zones[Zone]; len(s) != 0 {
		t.Errorf("netavark_zone keeps %q", s)
	}
	if s := f.zones["trusted"]; !slices.Equal(s, []string{"10.99.0.0/16"}) {
		t.Errorf("trusted zone: %q", s)
	}
	// Again: nothing left to remove is no error.
	if err := d.Teardown([]firewall.PortForward{pfB}, []firewall.NetworkRules{netA}); err != nil {
		t.Errorf("repeated teardown: %v", err)
	}
}

func TestTeardownWithoutTheObjectsIsNoError(t *testing.T) {
	f := newFake()
	if err := New(Options{API: f}).Teardown([]firewall.PortForward{pfA}, []firewall.NetworkRules{netA}); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 0 {
		t.Errorf("calls: %q", f.calls)
	}
}

func TestSetupFailureLeavesNothingOfItsOwn(t *testing.T) {
	f := newFake()
	d := New(Options{API: f})
	if err := ensureObjects(f); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	f.fail["setPolicySettings netavark_host_fwd forward=0 rich=1"] = boom
	err := d.Setup([]firewall.NetworkRules{netA}, []firewall.PortForward{pfA})
	if !errors.Is(err, boom) {
		t.Fatalf("setup: %v, want boom", err)
	}
	if s := f.zones[Zone]; len(s) != 0 {
		t.Errorf("sources left: %q", s)
	}
	if r := f.policies[PolicyPorts].Rules; len(r.ForwardPorts)+len(r.RichRules) != 0 {
		t.Errorf("forwards left: %+v", r)
	}
}

func TestSetupRefusesATakenHostPort(t *testing.T) {
	f := newFake()
	d := New(Options{API: f})
	if err := d.Setup([]firewall.NetworkRules{netA}, []firewall.PortForward{pfA}); err != nil {
		t.Fatal(err)
	}
	before := *f.policies[PolicyPorts]
	for _, m := range []network.PortMapping{
		{HostPort: 8079, ContainerPort: 81, Protocol: "tcp", Range: 2},
		{HostPort: 8080, ContainerPort: 81, Protocol: "tcp", Range: 1, HostIP: "127.0.0.1"},
	} {
		clash := firewall.PortForward{NetworkID: netA.ID, ContainerID: "3", IPv4: netip.MustParseAddr("10.89.3.4"), Mappings: []network.PortMapping{m}}
		err := d.Setup(nil, []firewall.PortForward{clash})
		if !errors.Is(err, firewall.ErrPortInUse) || !strings.Contains(err.Error(), "10.89.3.2") {
			t.Errorf("%+v: %v, want ErrPortInUse naming 10.89.3.2", m, err)
		}
	}
	if diff := cmp.Diff(before, *f.policies[PolicyPorts]); diff != "" {
		t.Errorf("a refused setup changed the policy:\n%s", diff)
	}
	// Another protocol or family on the same port is no clash.
	udp := firewall.PortForward{NetworkID: netA.ID, ContainerID: "3", IPv4: netip.MustParseAddr("10.89.3.4"),
		Mappings: []network.PortMapping{{HostPort: 8080, ContainerPort: 81, Protocol: "udp"}}}
	if err := d.Setup(nil, []firewall.PortForward{udp}); err != nil {
		t.Errorf("udp on a tcp port: %v", err)
	}
}

func TestReset(t *testing.T) {
	f := newFake()
	d := New(Options{API: f})
	if err := d.Setup([]firewall.NetworkRules{netA}, []firewall.PortForward{pfA, pfB}); err != nil {
		t.Fatal(err)
	}
	f.zones["trusted"] = []string{"10.99.0.0/16"}
	if err := d.Reset(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{PolicyPorts, PolicyLocal} {
		if r := f.policies[p].Rules; len(r.ForwardPorts)+len(r.RichRules) != 0 {
			t.Errorf("%s after reset: %+v", p, r)
		}
	}
	if len(f.zones[Zone]) != 0 || len(f.zones["trusted"]) != 1 {
		t.Errorf("zones after reset: %v", f.zones)
	}
}

func TestPlanPorts(t *testing.T) {
	v4, v6 := netip.MustParseAddr("10.88.0.2"), netip.MustParseAddr("fd00::2")
	local := func(port, to string) string {
		return `rule family="ipv4" destination address="127.0.0.1" forward-port port="` + port + `" protocol="tcp" to-port="` + to + `" to-addr="10.88.0.2"`
	}
	for _, c := range []struct {
		name string
		m    network.PortMapping
		want portRules
	}{
		{"every address", network.PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "tcp", Range: 1},
			portRules{forward: []ForwardPort{{"8080", "tcp", "80", "10.88.0.2"}, {"8080", "tcp", "80", "fd00::2"}}, local: []string{local("8080", "80")}}},
		{"a range", network.PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "TCP", Range: 3},
			portRules{forward: []ForwardPort{{"8080-8082", "tcp", "80-82", "10.88.0.2"}, {"8080-8082", "tcp", "80-82", "fd00::2"}}, local: []string{local("8080-8082", "80-82")}}},
		{"IPv4 wildcard", network.PortMapping{HostIP: "0.0.0.0", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
			portRules{forward: []ForwardPort{{"8080", "tcp", "80", "10.88.0.2"}}, local: []string{local("8080", "80")}}},
		{"IPv6 wildcard", network.PortMapping{HostIP: "::", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
			portRules{forward: []ForwardPort{{"8080", "tcp", "80", "fd00::2"}}}},
		{"localhost", network.PortMapping{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
			portRules{local: []string{local("8080", "80")}}},
		{"IPv6 localhost", network.PortMapping{HostIP: "::1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}, portRules{}},
		{"one address", network.PortMapping{HostIP: "192.0.2.1", HostPort: 53, ContainerPort: 5353, Protocol: "udp"},
			portRules{rich: []string{`rule family="ipv4" destination address="192.0.2.1" forward-port port="53" protocol="udp" to-port="5353" to-addr="10.88.0.2"`}}},
		{"one IPv6 address", network.PortMapping{HostIP: "2001:db8::1", HostPort: 53, ContainerPort: 53, Protocol: "sctp"},
			portRules{rich: []string{`rule family="ipv6" destination address="2001:db8::1" forward-port port="53" protocol="sctp" to-port="53" to-addr="fd00::2"`}}},
	} {
		got, err := planPorts(firewall.PortForward{IPv4: v4, IPv6: v6, Mappings: []network.PortMapping{c.m}})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if diff := cmp.Diff(c.want, got, cmp.AllowUnexported(portRules{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
	_, err := planPorts(firewall.PortForward{IPv4: v4, Mappings: []network.PortMapping{{HostIP: "abcd", HostPort: 8080, ContainerPort: 80}}})
	if err == nil || err.Error() != `invalid host ip "abcd" provided for port 8080` {
		t.Errorf("bad host IP: %v", err)
	}
}

func TestDNSRulesOnlyOffPort53(t *testing.T) {
	n := netA
	n.DNSPort = 53
	if r := dnsRules(n); len(r) != 0 {
		t.Errorf("port 53: %q", r)
	}
	n.DNSPort = 0
	if r := dnsRules(n); len(r) != 0 {
		t.Errorf("port 0: %q", r)
	}
}

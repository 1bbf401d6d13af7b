package firewalld_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/firewall/firewalld"
	fwnft "github.com/berthnet/berth/internal/firewall/nftables"
	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

var (
	ctrNet = firewall.NetworkRules{ID: strings.Repeat("c", 64), Name: "hfnet", Bridge: "hfbr0",
		Subnets:  []netip.Prefix{netip.MustParsePrefix("198.18.1.0/24")},
		Gateways: []netip.Addr{netip.MustParseAddr("198.18.1.1")}, DNSPort: 5353}
	ctrPorts = firewall.PortForward{NetworkID: ctrNet.ID, ContainerID: strings.Repeat("1", 64), IPv4: netip.MustParseAddr("198.18.1.2"),
		Mappings: []network.PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp", Range: 1}}}
	dnsRule = `rule family="ipv4" destination address="198.18.1.1" forward-port port="53" protocol="udp" to-port="5353" to-addr="198.18.1.1"`
)

// TestPrivilegedFirewalld runs a real firewalld: a container's traffic to
// an outside namespace is masqueraded, its published port answers from
// outside, and teardown takes back what setup added and nothing else.
func TestPrivilegedFirewalld(t *testing.T) {
	nettest.Privileged(t)
	host, ctr, out := topology(t)
	f := nettest.StartFirewalld(t, host)
	// A subnet the administrator bound to a zone stays in it. (Setup's
	// first reload would drop a runtime-only binding.)
	f.Must(t, "--permanent", "--zone", "trusted", "--add-source", "198.18.3.0/24")
	f.Must(t, "--reload")
	foreign := firewall.NetworkRules{ID: strings.Repeat("f", 64), Name: "hfforeign", Subnets: []netip.Prefix{netip.MustParsePrefix("198.18.3.0/24")}}

	d := firewalld.New(firewalld.Options{Address: f.Address})
	if err := d.Setup([]firewall.NetworkRules{ctrNet, foreign}, []firewall.PortForward{ctrPorts}); err != nil {
		t.Fatalf("setup: %v\n%s", err, f.Tail())
	}
	// Again: nothing doubles.
	if err := d.Setup([]firewall.NetworkRules{ctrNet}, []firewall.PortForward{ctrPorts}); err != nil {
		t.Fatalf("second setup: %v", err)
	}
	checkList(t, f, []string{"--zone", "netavark_zone", "--list-sources"}, "198.18.1.0/24")
	checkList(t, f, []string{"--zone", "trusted", "--list-sources"}, "198.18.3.0/24")
	checkList(t, f, []string{"--policy", "netavark_portfwd", "--list-forward-ports"}, "port=8080:proto=tcp:toport=80:toaddr=198.18.1.2")
	checkList(t, f, []string{"--policy", "netavark_portfwd", "--list-rich-rules"}, dnsRule)
	checkList(t, f, []string{"--policy", "netavark_host_fwd", "--list-rich-rules"},
		`rule family="ipv4" destination address="127.0.0.1" forward-port port="8080" protocol="tcp" to-port="80" to-addr="198.18.1.2"`)

	// Out: the outside namespace has no route to the container's subnet,
	// so an answer means masquerade; the peer is the host's address.
	peers := nettest.ServeBanner(nettest.Listen(t, out, "tcp4", "198.18.2.2:9000"), "outside")
	if got, err := nettest.Fetch(ctr, "tcp4", "198.18.2.2:9000"); err != nil || got != "outside" {
		t.Fatalf("container to outside: %q %v\n%s", got, err, f.Tail())
	}
	if p := <-peers; !strings.HasPrefix(p, "198.18.2.1:") {
		t.Errorf("outside saw %s, want the host's 198.18.2.1 (masquerade)", p)
	}
	// In: the published port answers from outside.
	nettest.ServeBanner(nettest.Listen(t, ctr, "tcp4", "0.0.0.0:80"), "container")
	if got, err := nettest.Fetch(out, "tcp4", "198.18.2.1:8080"); err != nil || got != "container" {
		t.Fatalf("outside to published port: %q %v", got, err)
	}

	if err := d.Teardown([]firewall.PortForward{ctrPorts}, []firewall.NetworkRules{ctrNet, foreign}); err != nil {
		t.Fatalf("teardown: %v", err)
	}
	checkList(t, f, []string{"--zone", "netavark_zone", "--list-sources"})
	checkList(t, f, []string{"--zone", "trusted", "--list-sources"}, "198.18.3.0/24")
	checkList(t, f, []string{"--policy", "netavark_portfwd", "--list-forward-ports"})
	checkList(t, f, []string{"--policy", "netavark_portfwd", "--list-rich-rules"})
	checkList(t, f, []string{"--policy", "netavark_host_fwd", "--list-rich-rules"})
	if got, err := nettest.FetchWithin(out, "tcp4", "198.18.2.1:8080", time.Second); err == nil {
		t.Errorf("published port still answers after teardown: %q", got)
	}
	if err := d.Teardown([]firewall.PortForward{ctrPorts}, []firewall.NetworkRules{ctrNet}); err != nil {
		t.Errorf("repeated teardown: %v", err)
	}
}

// topology makes a host namespace between a container (198.18.1.2,
// routed through the host's 198.18.1.1) and an outside namespace
// (198.18.2.2) with no route back to the container's subnet; the host
// forwards.
func topology(t *testing.T) (host, ctr, out *nettest.NS) {
	t.Helper()
	host, ctr, out = nettest.NewNS(t, "host"), nettest.NewNS(t, "ctr"), nettest.NewNS(t, "out")
	nettest.Connect(t, host, "hfbr0", netip.MustParsePrefix("198.18.1.1/24"), ctr, "eth0", netip.MustParsePrefix("198.18.1.2/24"))
	nettest.Connect(t, host, "hfout0", netip.MustParsePrefix("198.18.2.1/24"), out, "eth0", netip.MustParsePrefix("198.18.2.2/24"))
	for _, c := range []struct {
		ns   *nettest.NS
		args []string
	}{{ctr, []string{"ip", "route", "add", "default", "via", "198.18.1.1"}}, {host, []string{"sysctl", "-qw", "net.ipv4.ip_forward=1"}}} {
		if o, err := nettest.Run(c.ns, 5*time.Second, c.args[0], c.args[1:]...); err != nil {
			t.Fatal(c.args, err, o)
		}
	}
	return host, ctr, out
}

// checkList compares the lines firewall-cmd prints with want, in any
// order.
func checkList(t *testing.T, f *nettest.Firewalld, args []string, want ...string) {
	t.Helper()
	out := f.Must(t, args...)
	var got []string
	for _, l := range strings.FieldsFunc(out, func(r rune) bool { return r == '\n' }) {
		got = append(got, strings.Fields(l)...)
	}
	if strings.Contains(args[len(args)-1], "rich") {
		got = strings.FieldsFunc(out, func(r rune) bool { return r == '\n' })
	}
	if strings.Join(sorted(got), "\n") != strings.Join(sorted(want), "\n") {
		t.Errorf("firewall-cmd %s:\n%s\nwant:\n%s", strings.Join(args, " "), out, strings.Join(want, "\n"))
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestPrivilegedReloadListener: firewall-cmd --reload drops the runtime
// sources and forwards; the listener puts them back.
func TestPrivilegedReloadListener(t *testing.T) {
	nettest.Privileged(t)
	f := nettest.StartFirewalld(t, nettest.NewNS(t, "host"))
	d := firewalld.New(firewalld.Options{Address: f.Address})
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- firewalld.Listen(ctx, f.Address, func() error {
			calls.Add(1)
			return d.Setup([]firewall.NetworkRules{ctrNet}, []firewall.PortForward{ctrPorts})
		}, nil)
	}()
	bound := func() bool {
		out, err := f.Cmd("--zone", "netavark_zone", "--list-sources")
		return err == nil && out == "198.18.1.0/24"
	}
	nettest.WaitFor(t, "the first reapply", bound)
	f.Must(t, "--reload")
	nettest.WaitFor(t, "the reapply after a reload", func() bool { return calls.Load() >= 2 && bound() })
	checkList(t, f, []string{"--policy", "netavark_portfwd", "--list-forward-ports"}, "port=8080:proto=tcp:toport=80:toaddr=198.18.1.2")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Listen after cancel: %v", err)
	}
}

// TestPrivilegedAlongside: with firewalld running, the nftables driver's
// masquerade is not enough (firewalld rejects forwarding between zones);
// alongside firewalld the subnet is trusted and the container gets out.
// Teardown unbinds it again.
func TestPrivilegedAlongside(t *testing.T) {
	nettest.Privileged(t)
	host, ctr, out := topology(t)
	f := nettest.StartFirewalld(t, host)
	nettest.ServeBanner(nettest.Listen(t, out, "tcp4", "198.18.2.2:9000"), "outside")
	plain := fwnft.New(host.Fd())
	t.Cleanup(func() { _ = plain.Reset() })
	if err := plain.Setup([]firewall.NetworkRules{ctrNet}, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := nettest.FetchWithin(ctr, "tcp4", "198.18.2.2:9000", time.Second); err == nil {
		t.Errorf("firewalld let a subnet of no zone out (%q): the test proves nothing", got)
	}
	d := firewalld.Alongside(fwnft.New(host.Fd()), firewalld.Options{Address: f.Address})
	if err := d.Setup([]firewall.NetworkRules{ctrNet}, nil); err != nil {
		t.Fatal(err)
	}
	checkList(t, f, []string{"--zone", "trusted", "--list-sources"}, "198.18.1.0/24")
	if got, err := nettest.Fetch(ctr, "tcp4", "198.18.2.2:9000"); err != nil || got != "outside" {
		t.Fatalf("container to outside alongside firewalld: %q %v", got, err)
	}
	if err := d.Teardown(nil, []firewall.NetworkRules{ctrNet}); err != nil {
		t.Fatal(err)
	}
	checkList(t, f, []string{"--zone", "trusted", "--list-sources"})
}

package core_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	bolt "go.etcd.io/bbolt"

	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/firewall"
	fwipt "github.com/berthnet/berth/internal/firewall/iptables"
	fwnft "github.com/berthnet/berth/internal/firewall/nftables"
	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

// topo is a "host" namespace with an "outside" peer on 198.18.0.0/24:
// host 198.18.0.1, outside 198.18.0.2. The outside has no route to the
// container subnets, so replies reach it only through NAT.
type topo struct {
	host, outside *nettest.NS
	cfgDir        string
	m             *core.Manager
	fw            firewall.Driver
}

func newTopo(t *testing.T, fw func(host *nettest.NS) firewall.Driver, mod func(*core.Config)) *topo {
	t.Helper()
	nettest.Privileged(t)
	tp := &topo{host: nettest.NewNS(t, "host"), outside: nettest.NewNS(t, "out")}
	nettest.Connect(t, tp.host, "uplink0", netip.MustParsePrefix("198.18.0.1/24"), tp.outside, "eth0", netip.MustParsePrefix("198.18.0.2/24"))
	tp.cfgDir = t.TempDir()
	if fw == nil {
		fw = nftDriver
	}
	tp.fw = fw(tp.host)
	cfg := core.Config{ConfigDir: tp.cfgDir, Firewall: tp.fw, HostNS: tp.host.NetNS, AardvarkBinary: "/nonexistent"}
	if mod != nil {
		mod(&cfg)
	}
	m, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tp.m = m
	return tp
}

func nftDriver(host *nettest.NS) firewall.Driver { return fwnft.New(host.Fd()) }

func iptDriver(host *nettest.NS) firewall.Driver {
	d, err := fwipt.New(fwipt.Options{NetNSPath: host.Path()})
	if err != nil {
		panic(err)
	}
	return d
}

// drivers are the firewall drivers the packet tests run against.
var drivers = []struct {
	name string
	new  func(*nettest.NS) firewall.Driver
}{{"nftables", nftDriver}, {"iptables", iptDriver}}

func bridgeNet(name, br, subnet, gw string) network.Network {
	return network.Network{
		Name: name, ID: fmt.Sprintf("%x", sha256.Sum256([]byte(name))), Driver: network.DriverBridge, NetworkInterface: br,
		Subnets:     []network.Subnet{{Subnet: netip.MustParsePrefix(subnet), Gateway: netip.MustParseAddr(gw)}},
		IPAMOptions: map[string]string{"driver": "host-local"},
	}
}

func opts(id, name string, n network.Network, ip string, ports ...network.PortMapping) *network.Options {
	return &network.Options{
		ContainerID: fmt.Sprintf("%064s", id), ContainerName: name, PortMappings: ports,
		Networks:    network.Attachments{{Name: n.Name, PerNetworkOptions: network.PerNetworkOptions{InterfaceName: "eth0", StaticIPs: []netip.Addr{netip.MustParseAddr(ip)}}}},
		NetworkInfo: map[string]network.Network{n.Name: n},
	}
}

// container creates a container namespace, sets it up and registers its
// teardown.
func (tp *topo) container(t *testing.T, o *network.Options) (*nettest.NS, map[string]network.StatusBlock) {
	t.Helper()
	ns := nettest.NewNS(t, nettest.RandName("ctr"))
	res, err := tp.m.Setup(context.Background(), ns.Path(), o)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	t.Cleanup(func() { _ = tp.m.Teardown(context.Background(), ns.Path(), o) })
	return ns, res
}

func TestPrivilegedPublishedPortFromOutside(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) { testPublishedPort(t, d.new) })
	}
}

func testPublishedPort(t *testing.T, fw func(*nettest.NS) firewall.Driver) {
	tp := newTopo(t, fw, nil)
	n := bridgeNet("pub", "bpub0", "198.19.1.0/24", "198.19.1.1")
	o := opts("a1", "web", n, "198.19.1.2",
		network.PortMapping{ContainerPort: 80, HostPort: 8080, Protocol: "tcp", Range: 1},
		network.PortMapping{ContainerPort: 53, HostPort: 5353, Protocol: "udp", Range: 1})
	ctr, res := tp.container(t, o)

	sb := res["pub"]
	iface, ok := sb.Interfaces["eth0"]
	if !ok || len(iface.Subnets) != 1 || iface.Subnets[0].IPNet.String() != "198.19.1.2/24" || iface.Subnets[0].Gateway.String() != "198.19.1.1" {
		t.Fatalf("status block: %+v", sb)
	}
	if len(iface.MACAddress) != 17 {
		t.Fatalf("mac %q", iface.MACAddress)
	}

	l := nettest.Listen(t, ctr, "tcp4", "0.0.0.0:80")
	peers := nettest.ServeBanner(l, "banner-tcp")
	got, err := nettest.Fetch(tp.outside, "tcp4", "198.18.0.1:8080")
	if err != nil || got != "banner-tcp" {
		t.Fatalf("tcp through published port: %q, %v", got, err)
	}
	// The server sees the outside client's real address (DNAT, no SNAT).
	if p := <-peers; !strings.HasPrefix(p, "198.18.0.2:") {
		t.Errorf("server saw peer %s, want 198.18.0.2", p)
	}

	pc := nettest.ListenPacket(t, ctr, "udp4", "0.0.0.0:53")
	go func() {
		buf := make([]byte, 100)
		for {
			n, a, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte("echo:"), buf[:n]...), a)
		}
	}()
	c, err := nettest.Dial(tp.outside, "udp4", "198.18.0.1:5353", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	k, err := c.Read(buf)
	if err != nil || string(buf[:k]) != "echo:ping" {
		t.Fatalf("udp through published port: %q, %v", buf[:k], err)
	}

	// Localhost on the host reaches the port too (route_localnet + masquerade).
	if got, err := nettest.Fetch(tp.host, "tcp4", "127.0.0.1:8080"); err != nil || got != "banner-tcp" {
		t.Errorf("127.0.0.1:8080 from the host: %q, %v", got, err)
	}
	// Hairpin: the container reaches its own published port via the host IP.
	if got, err := nettest.Fetch(ctr, "tcp4", "198.18.0.1:8080"); err != nil || got != "banner-tcp" {
		t.Errorf("hairpin 198.18.0.1:8080 from the container itself: %q, %v", got, err)
	}
}

func TestPrivilegedEgressMasquerade(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) { testEgress(t, d.new) })
	}
}

func testEgress(t *testing.T, fw func(*nettest.NS) firewall.Driver) {
	tp := newTopo(t, fw, nil)
	n := bridgeNet("egr", "begr0", "198.19.2.0/24", "198.19.2.1")
	ctr, _ := tp.container(t, opts("b1", "egress", n, "198.19.2.7"))
	l := nettest.Listen(t, tp.outside, "tcp4", "198.18.0.2:9000")
	peers := nettest.ServeBanner(l, "outside")
	got, err := nettest.Fetch(ctr, "tcp4", "198.18.0.2:9000")
	if err != nil || got != "outside" {
		t.Fatalf("container to outside: %q, %v", got, err)
	}
	if p := <-peers; !strings.HasPrefix(p, "198.18.0.1:") {
		t.Fatalf("outside saw %s, want the host's address 198.18.0.1 (masquerade)", p)
	}
}

func TestPrivilegedInternalNetwork(t *testing.T) {
	tp := newTopo(t, nil, nil)
	n := bridgeNet("int", "bint0", "198.19.3.0/24", "198.19.3.1")
	n.Internal = true
	ctr, res := tp.container(t, opts("c1", "internal", n, "198.19.3.2"))
	if gw := res["int"].Interfaces["eth0"].Subnets[0].Gateway; gw != nil {
		t.Errorf("internal network reported gateway %v", gw)
	}
	out, _ := nettest.Run(ctr, 5*time.Second, "ip", "route", "show", "default")
	if strings.TrimSpace(out) != "" {
		t.Errorf("internal network has a default route: %s", out)
	}
	if _, err := nettest.Fetch(ctr, "tcp4", "198.18.0.2:9"); err == nil {
		t.Error("internal container reached the outside")
	}
	out, _ = nettest.Run(tp.host, 5*time.Second, "nft", "list", "table", "inet", fwnft.TableName)
	if strings.Contains(out, "198.19.3.0") {
		t.Errorf("internal network got firewall rules:\n%s", out)
	}
}

func TestPrivilegedIsolation(t *testing.T) {
	cases := []struct {
		a, b  string // isolate option of net A and net B
		aToB  bool   // A can reach B
		bToA  bool
		label string
	}{
		{"false", "false", true, true, "none"},
		{"true", "true", false, false, "both isolated"},
		{"true", "false", true, true, "one isolated"},
		{"strict", "false", false, false, "strict"},
		{"false", "strict", false, false, "strict set up second"},
		{"", "", false, false, "unset is strict"},
		{"", "false", false, false, "unset and false"},
	}
	for _, d := range drivers {
		for _, tc := range cases {
			t.Run(d.name+"/"+tc.label, func(t *testing.T) {
				tp := newTopo(t, d.new, nil)
				na := bridgeNet("isoa", "bisoa0", "198.19.4.0/24", "198.19.4.1")
				nb := bridgeNet("isob", "bisob0", "198.19.5.0/24", "198.19.5.1")
				if tc.a != "" {
					na.Options = map[string]string{"isolate": tc.a}
				}
				if tc.b != "" {
					nb.Options = map[string]string{"isolate": tc.b}
				}
				ca, _ := tp.container(t, opts("d1", "a", na, "198.19.4.2"))
				cb, _ := tp.container(t, opts("d2", "b", nb, "198.19.5.2"))
				nettest.ServeBanner(nettest.Listen(t, ca, "tcp4", "0.0.0.0:80"), "A")
				nettest.ServeBanner(nettest.Listen(t, cb, "tcp4", "0.0.0.0:80"), "B")
				_, err := nettest.FetchWithin(ca, "tcp4", "198.19.5.2:80", time.Second)
				if (err == nil) != tc.aToB {
					t.Errorf("A->B reachable=%v, want %v (%v)", err == nil, tc.aToB, err)
				}
				_, err = nettest.FetchWithin(cb, "tcp4", "198.19.4.2:80", time.Second)
				if (err == nil) != tc.bToA {
					t.Errorf("B->A reachable=%v, want %v (%v)", err == nil, tc.bToA, err)
				}
			})
		}
	}
}

func TestPrivilegedDualStack(t *testing.T) {
	tp := newTopo(t, nil, nil)
	nettest.Connect(t, tp.host, "uplink6", netip.MustParsePrefix("fd00:18::1/64"), tp.outside, "eth6", netip.MustParsePrefix("fd00:18::2/64"))
	n := bridgeNet("ds", "bds0", "198.19.6.0/24", "198.19.6.1")
	n.IPv6Enabled = true
	n.Subnets = append(n.Subnets, network.Subnet{Subnet: netip.MustParsePrefix("fd00:19:6::/64"), Gateway: netip.MustParseAddr("fd00:19:6::1")})
	o := opts("e1", "ds", n, "198.19.6.2", network.PortMapping{ContainerPort: 80, HostPort: 8086, Protocol: "tcp", Range: 1})
	a := o.Networks[0]
	a.StaticIPs = append(a.StaticIPs, netip.MustParseAddr("fd00:19:6::2"))
	o.Networks[0] = a
	ctr, res := tp.container(t, o)
	if got := len(res["ds"].Interfaces["eth0"].Subnets); got != 2 {
		t.Fatalf("want 2 addresses, got %d", got)
	}
	nettest.ServeBanner(nettest.Listen(t, ctr, "tcp", "[::]:80"), "ds")
	if got, err := nettest.Fetch(tp.outside, "tcp6", "[fd00:18::1]:8086"); err != nil || got != "ds" {
		t.Errorf("ipv6 published port: %q, %v", got, err)
	}
	if got, err := nettest.Fetch(tp.outside, "tcp4", "198.18.0.1:8086"); err != nil || got != "ds" {
		t.Errorf("ipv4 published port: %q, %v", got, err)
	}
	// The host end of the veth (a bridge port) has no IPv6 address of its
	// own: no DAD or MLD flooded to the other containers, no link-local
	// routes in the host's table. IPv6 through the bridge works (above).
	h := nettest.Handle(t, tp.host.NetNS)
	br, err := h.ByName("bds0")
	if err != nil {
		t.Fatal(err)
	}
	links, _ := h.LinkList()
	ports := 0
	for _, l := range links {
		if l.Attrs().MasterIndex != br.Attrs().Index {
			continue
		}
		ports++
		if as, _ := h.AddrList(l, netlink.FAMILY_V6); len(as) != 0 {
			t.Errorf("host veth %s has IPv6 addresses %v", l.Attrs().Name, as)
		}
	}
	if ports != 1 {
		t.Errorf("bridge has %d ports, want 1", ports)
	}
}

// residue lists what berth left in the host namespace: links other than
// the test's own, the nftables table and state files.
func residue(t *testing.T, tp *topo) []string {
	t.Helper()
	var out []string
	for _, l := range nettest.Links(t, tp.host) {
		if l != "lo" && !strings.HasPrefix(l, "uplink") {
			out = append(out, "link "+l)
		}
	}
	c, err := nftables.New(nftables.WithNetNSFd(tp.host.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	tables, _ := c.ListTables()
	for _, tb := range tables {
		out = append(out, "nft table "+tb.Name)
	}
	filepath.Walk(filepath.Join(tp.cfgDir, "berth"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && filepath.Base(p) != "state.db" && filepath.Base(p) != "lock" {
			out = append(out, "file "+p)
		}
		return nil
	})
	if db, err := bolt.Open(filepath.Join(tp.cfgDir, "berth", "state.db"), 0o644, &bolt.Options{ReadOnly: true}); err == nil {
		db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				return b.ForEach(func(k, _ []byte) error {
					out = append(out, fmt.Sprintf("state %s/%s", name, k))
					return nil
				})
			})
		})
		db.Close()
	}
	return out
}

func TestPrivilegedTeardownLeavesNothing(t *testing.T) {
	tp := newTopo(t, nil, nil)
	n := bridgeNet("td", "btd0", "198.19.7.0/24", "198.19.7.1")
	pm := network.PortMapping{ContainerPort: 80, HostPort: 8087, Protocol: "tcp", Range: 3}
	var nss []*nettest.NS
	var os_ []*network.Options
	for i := 0; i < 3; i++ {
		o := opts(fmt.Sprintf("f%d", i), fmt.Sprintf("td%d", i), n, fmt.Sprintf("198.19.7.%d", i+2))
		if i == 0 {
			o.PortMappings = []network.PortMapping{pm}
		}
		ns := nettest.NewNS(t, nettest.RandName("ctr"))
		if _, err := tp.m.Setup(context.Background(), ns.Path(), o); err != nil {
			t.Fatal(err)
		}
		nss, os_ = append(nss, ns), append(os_, o)
	}
	for i := range nss {
		if err := tp.m.Teardown(context.Background(), nss[i].Path(), os_[i]); err != nil {
			t.Fatalf("teardown %d: %v", i, err)
		}
		left := residue(t, tp)
		if i < 2 && !slices.Contains(left, "link btd0") {
			t.Fatalf("bridge removed while containers remain: %v", left)
		}
		if links := nettest.Links(t, nss[i]); len(links) != 1 {
			t.Errorf("container %d still has links %v", i, links)
		}
	}
	if left := residue(t, tp); len(left) > 0 {
		t.Fatalf("residue after the last teardown: %v", left)
	}
	// A second teardown of the same container is harmless.
	if err := tp.m.Teardown(context.Background(), nss[0].Path(), os_[0]); err != nil {
		t.Errorf("repeated teardown: %v", err)
	}
}

func TestPrivilegedRollback(t *testing.T) {
	steps := []string{"bridge", "sysctl", "veth", "container-sysctl", "addresses", "routes", "firewall", "state", "dns"}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			tp := newTopo(t, nil, func(c *core.Config) {
				c.FailPoint = func(s string) error {
					if s == step {
						return errors.New("injected failure")
					}
					return nil
				}
			})
			n := bridgeNet("rb", "brb0", "198.19.8.0/24", "198.19.8.1")
			n.DNSEnabled = true
			o := opts("g1", "rb", n, "198.19.8.2", network.PortMapping{ContainerPort: 80, HostPort: 8088, Protocol: "tcp", Range: 1})
			ns := nettest.NewNS(t, nettest.RandName("ctr"))
			_, err := tp.m.Setup(context.Background(), ns.Path(), o)
			if err == nil || !strings.Contains(err.Error(), "injected failure") {
				t.Fatalf("setup error = %v, want the injected failure", err)
			}
			if left := residue(t, tp); len(left) > 0 {
				t.Errorf("residue after failed setup at %s: %v", step, left)
			}
			if links := nettest.Links(t, ns); len(links) != 1 {
				t.Errorf("container namespace keeps %v", links)
			}
		})
	}
}

func TestPrivilegedConcurrentSetupTeardown(t *testing.T) {
	tp := newTopo(t, nil, nil)
	n := bridgeNet("par", "bpar0", "198.19.0.0/16", "198.19.0.1")
	const N = 50
	nss := make([]*nettest.NS, N)
	os_ := make([]*network.Options, N)
	for i := range nss {
		nss[i] = nettest.NewNS(t, nettest.RandName("ctr"))
		os_[i] = opts(fmt.Sprintf("p%d", i), fmt.Sprintf("par%d", i), n, fmt.Sprintf("198.19.%d.%d", 10+i/200, 2+i%200),
			network.PortMapping{ContainerPort: 80, HostPort: uint16(20000 + i), Protocol: "tcp", Range: 1})
	}
	run := func(f func(i int) error) []error {
		var wg sync.WaitGroup
		errs := make([]error, N)
		for i := 0; i < N; i++ {
			wg.Add(1)
			go func(i int) { defer wg.Done(); errs[i] = f(i) }(i)
		}
		wg.Wait()
		return errs
	}
	for i, err := range run(func(i int) error { _, err := tp.m.Setup(context.Background(), nss[i].Path(), os_[i]); return err }) {
		if err != nil {
			t.Errorf("setup %d: %v", i, err)
		}
	}
	// Every container is reachable through its own published port.
	for _, i := range []int{0, N / 2, N - 1} {
		nettest.ServeBanner(nettest.Listen(t, nss[i], "tcp4", "0.0.0.0:80"), fmt.Sprint(i))
		if got, err := nettest.Fetch(tp.outside, "tcp4", fmt.Sprintf("198.18.0.1:%d", 20000+i)); err != nil || got != fmt.Sprint(i) {
			t.Errorf("port %d: %q %v", 20000+i, got, err)
		}
	}
	for i, err := range run(func(i int) error { return tp.m.Teardown(context.Background(), nss[i].Path(), os_[i]) }) {
		if err != nil {
			t.Errorf("teardown %d: %v", i, err)
		}
	}
	if left := residue(t, tp); len(left) > 0 {
		t.Fatalf("residue after %d concurrent teardowns: %v", N, left)
	}
}

func TestPrivilegedPortConflict(t *testing.T) {
	tp := newTopo(t, nil, nil)
	n := bridgeNet("cf", "bcf0", "198.19.9.0/24", "198.19.9.1")
	pm := network.PortMapping{ContainerPort: 80, HostPort: 8089, Protocol: "tcp", Range: 1}
	tp.container(t, opts("h1", "first", n, "198.19.9.2", pm))
	ns := nettest.NewNS(t, nettest.RandName("ctr"))
	_, err := tp.m.Setup(context.Background(), ns.Path(), opts("h2", "second", n, "198.19.9.3", pm))
	if !errors.Is(err, firewall.ErrPortInUse) {
		t.Fatalf("second container on the same host port: %v, want ErrPortInUse", err)
	}
	if links := nettest.Links(t, ns); len(links) != 1 {
		t.Errorf("failed setup left links %v", links)
	}
	// Podman tears down a container whose setup failed: the first
	// container keeps its published port.
	if err := tp.m.Teardown(context.Background(), ns.Path(), opts("h2", "second", n, "198.19.9.3", pm)); err != nil {
		t.Errorf("teardown after the failed setup: %v", err)
	}
	if out, err := nettest.Run(tp.host, 5*time.Second, "nft", "list", "map", "inet", "berth", "pf4any"); err != nil || !strings.Contains(out, "tcp . 8089 ") || !strings.Contains(out, ": 198.19.9.2 . 80") {
		t.Errorf("the first container lost 8089/tcp to the failed one's teardown: %v\n%s", err, out)
	}
}

// A network whose interface names a link that is not a bridge (here the
// host's uplink) is refused by setup, and its teardown leaves the link.
func TestPrivilegedTeardownSparesForeignLink(t *testing.T) {
	tp := newTopo(t, nil, nil)
	n := bridgeNet("fl", "uplink0", "198.19.10.0/24", "198.19.10.1")
	o := opts("g1", "foreign", n, "198.19.10.2")
	ns := nettest.NewNS(t, nettest.RandName("ctr"))
	if _, err := tp.m.Setup(context.Background(), ns.Path(), o); err == nil {
		t.Error("setup on a network whose interface is the host's uplink succeeded")
	}
	if err := tp.m.Teardown(context.Background(), ns.Path(), o); err != nil {
		t.Logf("teardown: %v", err)
	}
	if !slices.Contains(nettest.Links(t, tp.host), "uplink0") {
		t.Fatalf("teardown deleted the host's uplink: links %v", nettest.Links(t, tp.host))
	}
	if out, err := nettest.Run(tp.host, 5*time.Second, "busybox", "ping", "-c", "1", "-W", "2", "198.18.0.2"); err != nil {
		t.Errorf("uplink no longer carries traffic: %v %s", err, out)
	}
}

func TestPrivilegedFirewallReload(t *testing.T) {
	tp := newTopo(t, nil, nil)
	n := bridgeNet("rl", "brl0", "198.19.10.0/24", "198.19.10.1")
	ctr, _ := tp.container(t, opts("i1", "rl", n, "198.19.10.2", network.PortMapping{ContainerPort: 80, HostPort: 8090, Protocol: "tcp", Range: 1}))
	nettest.ServeBanner(nettest.Listen(t, ctr, "tcp4", "0.0.0.0:80"), "reload")
	if _, err := nettest.Run(tp.host, 5*time.Second, "nft", "flush", "ruleset"); err != nil {
		t.Fatal(err)
	}
	if _, err := nettest.Fetch(tp.outside, "tcp4", "198.18.0.1:8090"); err == nil {
		t.Fatal("port still forwarded after the ruleset was flushed")
	}
	ids, err := tp.m.FirewallReload(context.Background())
	if err != nil || len(ids) != 1 {
		t.Fatalf("reload: %v %v", ids, err)
	}
	if got, err := nettest.Fetch(tp.outside, "tcp4", "198.18.0.1:8090"); err != nil || got != "reload" {
		t.Fatalf("after reload: %q %v", got, err)
	}
}

// Strict isolation (the default) still lets a container reach another
// network's published port through the host's address, as netavark 2.1
// does (nftables driver; the iptables driver keeps netavark 1.x's layout,
// which drops it).
func TestPrivilegedIsolatedReachesPublishedPort(t *testing.T) {
	tp := newTopo(t, nil, nil)
	na := bridgeNet("isoa", "bisoa0", "198.19.4.0/24", "198.19.4.1")
	nb := bridgeNet("isob", "bisob0", "198.19.5.0/24", "198.19.5.1")
	ca, _ := tp.container(t, opts("p1", "a", na, "198.19.4.2"))
	cb, _ := tp.container(t, opts("p2", "b", nb, "198.19.5.2", network.PortMapping{ContainerPort: 80, HostPort: 8097, Protocol: "tcp", Range: 1}))
	nettest.ServeBanner(nettest.Listen(t, cb, "tcp4", "0.0.0.0:80"), "B")
	if _, err := nettest.FetchWithin(ca, "tcp4", "198.19.5.2:80", time.Second); err == nil {
		t.Errorf("A reached B directly despite strict isolation")
	}
	if got, err := nettest.Fetch(ca, "tcp4", "198.18.0.1:8097"); err != nil || got != "B" {
		t.Errorf("A to B's published port through the host: %q %v", got, err)
	}
}

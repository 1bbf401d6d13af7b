package core_test

import (
	"context"
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

	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/dhcpproxy"
	"github.com/berthnet/berth/internal/dhcpproxy/dhcpproxytest"
	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

// dhcpTopo is a host with a LAN behind its "lanparent" link (dnsmasq on the
// LAN) and a DHCP proxy that core reaches over its socket.
type dhcpTopo struct {
	*topo
	lan   *dhcpproxytest.LAN
	proxy *dhcpproxytest.Proxy
}

func newDHCPTopo(t *testing.T, lanOpts dhcpproxytest.LANOptions, proxyCfg dhcpproxy.Config) *dhcpTopo {
	t.Helper()
	nettest.Privileged(t)
	proxy := dhcpproxytest.StartProxy(t, proxyCfg)
	tp := newTopo(t, nil, func(c *core.Config) { c.DHCP = dhcpproxy.Leaser{Socket: proxy.Socket} })
	lanOpts.Host = tp.host
	return &dhcpTopo{topo: tp, lan: dhcpproxytest.NewLAN(t, lanOpts), proxy: proxy}
}

func dhcpNet(name, parent string) network.Network {
	return network.Network{
		Name: name, ID: fmt.Sprintf("%064x", len(name)*7919), Driver: network.DriverMacvlan, NetworkInterface: parent,
		IPAMOptions: map[string]string{"driver": "dhcp"},
	}
}

func dhcpOpts(id, name string, n network.Network) *network.Options {
	return &network.Options{
		ContainerID: fmt.Sprintf("%064s", id), ContainerName: name,
		Networks:    network.Attachments{{Name: n.Name, PerNetworkOptions: network.PerNetworkOptions{InterfaceName: "eth0"}}},
		NetworkInfo: map[string]network.Network{n.Name: n},
	}
}

// leased returns the address a status block reports for eth0.
func leased(t *testing.T, sb network.StatusBlock) netip.Prefix {
	t.Helper()
	iface := sb.Interfaces["eth0"]
	if len(iface.Subnets) != 1 {
		t.Fatalf("status has %d addresses: %+v", len(iface.Subnets), sb)
	}
	return iface.Subnets[0].IPNet
}

func TestPrivilegedMacvlanDHCP(t *testing.T) {
	tp := newDHCPTopo(t, dhcpproxytest.LANOptions{}, dhcpproxy.Config{})
	n := dhcpNet("mvdhcp", "lanparent")
	n.Routes = []network.Route{{Destination: netip.MustParsePrefix("198.19.200.0/24"), Gateway: netip.MustParseAddr("198.18.1.254")}}
	o := dhcpOpts("d1", "web", n)
	o.ContainerHostname = "webhost"
	ctr := nettest.NewNS(t, nettest.RandName("ctr"))
	res, err := tp.m.Setup(context.Background(), ctr.Path(), o)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	torn := false
	t.Cleanup(func() {
		if !torn {
			_ = tp.m.Teardown(context.Background(), ctr.Path(), o)
		}
	})

	// The status block carries the lease: address, gateway, DNS, domain.
	sb := res["mvdhcp"]
	addr := leased(t, sb)
	if !dhcpproxytest.LANSubnet.Contains(addr.Addr()) || addr.Bits() != 24 {
		t.Errorf("leased %v, want an address in %v with /24", addr, dhcpproxytest.LANSubnet)
	}
	if gw := sb.Interfaces["eth0"].Subnets[0].Gateway; gw == nil || *gw != dhcpproxytest.LANGateway {
		t.Errorf("gateway %v", gw)
	}
	if !slices.Equal(sb.DNSServerIPs, []netip.Addr{dhcpproxytest.LANDNS}) || !slices.Equal(sb.DNSSearchDomains, []string{dhcpproxytest.LANDomain}) {
		t.Errorf("dns %v search %v", sb.DNSServerIPs, sb.DNSSearchDomains)
	}
	mac := sb.Interfaces["eth0"].MACAddress

	// The container has the address and a default route (metric 99), and
	// the network's static route.
	if out := run(t, ctr, "ip", "-4", "addr", "show", "eth0"); !strings.Contains(out, "inet "+addr.String()) {
		t.Errorf("eth0 lacks %v:\n%s", addr, out)
	}
	routes := run(t, ctr, "ip", "-4", "route")
	if !strings.Contains(routes, "default via 198.18.1.1 dev eth0 proto dhcp metric 99") {
		t.Errorf("no default route with metric 99:\n%s", routes)
	}
	if !strings.Contains(routes, "198.19.200.0/24 via 198.18.1.254") {
		t.Errorf("static route missing:\n%s", routes)
	}
	// The LAN reaches it directly.
	nettest.ServeBanner(nettest.Listen(t, ctr, "tcp4", "0.0.0.0:80"), "dhcp")
	if got, err := nettest.Fetch(tp.lan.NS, "tcp4", addr.Addr().String()+":80"); err != nil || got != "dhcp" {
		t.Errorf("LAN peer to the leased address: %q %v", got, err)
	}
	// dnsmasq recorded the lease under the container's MAC, hostname and
	// client id (type 0, the container ID).
	sl, ok := tp.lan.ServerLease(addr.Addr())
	if !ok {
		t.Fatalf("dnsmasq has no lease for %v: %+v", addr, tp.lan.ServerLeases())
	}
	if sl.MAC != mac || sl.Hostname != "webhost" || !strings.HasPrefix(sl.ClientID, "00:30:30:30") {
		t.Errorf("server lease %+v (mac %s)", sl, mac)
	}

	// Teardown sends DHCPRELEASE: dnsmasq drops the lease; the proxy
	// forgets it; nothing is left.
	torn = true
	if err := tp.m.Teardown(context.Background(), ctr.Path(), o); err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if !dhcpproxytest.WaitFor(3*time.Second, func() bool { _, ok := tp.lan.ServerLease(addr.Addr()); return !ok }) {
		t.Errorf("dnsmasq still has the lease after teardown: %+v", tp.lan.ServerLeases())
	}
	if links := nettest.Links(t, ctr); len(links) != 1 {
		t.Errorf("container keeps %v", links)
	}
	if left := residue(t, tp.topo); len(left) > 0 && !(len(left) == 1 && left[0] == "link lanparent") {
		t.Errorf("residue: %v", left)
	}
}

func TestPrivilegedDHCPMetricAndNoDefaultRoute(t *testing.T) {
	tp := newDHCPTopo(t, dhcpproxytest.LANOptions{}, dhcpproxy.Config{})
	n := dhcpNet("mvm", "lanparent")
	n.Options = map[string]string{"metric": "250", "mode": "private"}
	ctr, _ := tp.container(t, dhcpOpts("m1", "m1", n))
	if routes := run(t, ctr, "ip", "-4", "route", "show", "default"); !strings.Contains(routes, "metric 250") {
		t.Errorf("metric option ignored: %s", routes)
	}
	n2 := dhcpNet("mvn", "lanparent")
	n2.Options = map[string]string{"no_default_route": "true"}
	ctr2, res := tp.container(t, dhcpOpts("m2", "m2", n2))
	if routes := run(t, ctr2, "ip", "-4", "route", "show", "default"); strings.TrimSpace(routes) != "" {
		t.Errorf("no_default_route: %s", routes)
	}
	if a := leased(t, res["mvn"]); !dhcpproxytest.LANSubnet.Contains(a.Addr()) {
		t.Errorf("lease %v", a)
	}
}

func TestPrivilegedDHCPErrors(t *testing.T) {
	nettest.Privileged(t)
	t.Run("proxy not running", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "nv-proxy.sock")
		tp := newTopo(t, nil, func(c *core.Config) { c.DHCP = dhcpproxy.Leaser{Socket: sock} })
		dhcpproxytest.NewLAN(t, dhcpproxytest.LANOptions{Host: tp.host, NoServer: true})
		ctr := nettest.NewNS(t, nettest.RandName("ctr"))
		_, err := tp.m.Setup(context.Background(), ctr.Path(), dhcpOpts("e1", "e1", dhcpNet("mve", "lanparent")))
		want := "dhcp proxy is not running: connect " + sock + ": no such file or directory"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
		if links := nettest.Links(t, ctr); len(links) != 1 {
			t.Errorf("left in the container: %v", links)
		}
	})
	t.Run("parent missing", func(t *testing.T) {
		tp := newDHCPTopo(t, dhcpproxytest.LANOptions{}, dhcpproxy.Config{})
		ctr := nettest.NewNS(t, nettest.RandName("ctr"))
		_, err := tp.m.Setup(context.Background(), ctr.Path(), dhcpOpts("e2", "e2", dhcpNet("mve", "nosuch0")))
		if err == nil || !strings.Contains(err.Error(), "parent interface: nosuch0") {
			t.Errorf("error %v", err)
		}
		if links := nettest.Links(t, ctr); len(links) != 1 {
			t.Errorf("left in the container: %v", links)
		}
	})
	t.Run("no answer", func(t *testing.T) {
		tp := newDHCPTopo(t, dhcpproxytest.LANOptions{NoServer: true}, dhcpproxy.Config{Timeout: 2 * time.Second})
		ctr := nettest.NewNS(t, nettest.RandName("ctr"))
		start := time.Now()
		_, err := tp.m.Setup(context.Background(), ctr.Path(), dhcpOpts("e3", "e3", dhcpNet("mve", "lanparent")))
		if err == nil || !strings.Contains(err.Error(), "network mve: get dhcp lease for eth0: no DHCP answer on eth0 within 2s") {
			t.Errorf("error %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v", d)
		}
		if links := nettest.Links(t, ctr); len(links) != 1 {
			t.Errorf("left in the container: %v", links)
		}
		if b := readFile(t, tp.proxy.LeaseFile()); strings.Contains(b, "ns_path") {
			t.Errorf("proxy keeps a lease: %s", b)
		}
		if left := residue(t, tp.topo); len(left) > 0 && !(len(left) == 1 && left[0] == "link lanparent") {
			t.Errorf("residue: %v", left)
		}
	})
}

// Teardown without a running proxy reports it and still removes the link;
// a setup that fails after its lease releases the lease in the rollback.
func TestPrivilegedDHCPTeardownAndRollback(t *testing.T) {
	t.Run("teardown without proxy", func(t *testing.T) {
		tp := newDHCPTopo(t, dhcpproxytest.LANOptions{}, dhcpproxy.Config{})
		o := dhcpOpts("t1", "t1", dhcpNet("mvt", "lanparent"))
		ctr := nettest.NewNS(t, nettest.RandName("ctr"))
		if _, err := tp.m.Setup(context.Background(), ctr.Path(), o); err != nil {
			t.Fatal(err)
		}
		tp.proxy.Stop()
		err := tp.m.Teardown(context.Background(), ctr.Path(), o)
		if err == nil || !strings.Contains(err.Error(), "release dhcp lease of eth0: dhcp proxy is not running: connect ") {
			t.Errorf("teardown: %v", err)
		}
		if links := nettest.Links(t, ctr); len(links) != 1 {
			t.Errorf("left in the container: %v", links)
		}
	})
	t.Run("rollback releases", func(t *testing.T) {
		failAt := ""
		proxy := dhcpproxytest.StartProxy(t, dhcpproxy.Config{})
		tp := newTopo(t, nil, func(c *core.Config) {
			c.DHCP = dhcpproxy.Leaser{Socket: proxy.Socket}
			c.FailPoint = func(step string) error {
				if step == failAt {
					return errors.New("injected")
				}
				return nil
			}
		})
		lan := dhcpproxytest.NewLAN(t, dhcpproxytest.LANOptions{Host: tp.host})
		failAt = "state"
		ctr := nettest.NewNS(t, nettest.RandName("ctr"))
		_, err := tp.m.Setup(context.Background(), ctr.Path(), dhcpOpts("r1", "r1", dhcpNet("mvr", "lanparent")))
		if err == nil || !strings.Contains(err.Error(), "injected") {
			t.Fatalf("setup: %v", err)
		}
		if !dhcpproxytest.WaitFor(3*time.Second, func() bool { return len(lan.ServerLeases()) == 0 }) {
			t.Errorf("rollback left the lease with dnsmasq: %+v", lan.ServerLeases())
		}
		if links := nettest.Links(t, ctr); len(links) != 1 {
			t.Errorf("left in the container: %v", links)
		}
		if b := readFile(t, proxy.LeaseFile()); strings.Contains(b, "ns_path") {
			t.Errorf("proxy keeps a lease: %s", b)
		}
	})
}

func TestPrivilegedDHCPConcurrent(t *testing.T) {
	tp := newDHCPTopo(t, dhcpproxytest.LANOptions{}, dhcpproxy.Config{})
	n := dhcpNet("mvc", "lanparent")
	const N = 20
	ctrs := make([]*nettest.NS, N)
	opts := make([]*network.Options, N)
	addrs := make([]netip.Addr, N)
	errs := make([]error, N)
	for i := range N {
		ctrs[i] = nettest.NewNS(t, fmt.Sprintf("c%02d", i))
		opts[i] = dhcpOpts(fmt.Sprintf("c%02d", i), fmt.Sprintf("c%02d", i), n)
	}
	var wg sync.WaitGroup
	start := time.Now()
	for i := range N {
		wg.Go(func() {
			res, err := tp.m.Setup(context.Background(), ctrs[i].Path(), opts[i])
			if err != nil {
				errs[i] = err
				return
			}
			t.Cleanup(func() { _ = tp.m.Teardown(context.Background(), ctrs[i].Path(), opts[i]) })
			addrs[i] = res["mvc"].Interfaces["eth0"].Subnets[0].IPNet.Addr()
		})
	}
	wg.Wait()
	t.Logf("%d leases in %v", N, time.Since(start))
	seen := map[netip.Addr]int{}
	for i, err := range errs {
		if err != nil {
			t.Errorf("container %d: %v", i, err)
			continue
		}
		if j, dup := seen[addrs[i]]; dup {
			t.Errorf("containers %d and %d both got %v", j, i, addrs[i])
		}
		seen[addrs[i]] = i
	}
	if got := len(tp.lan.ServerLeases()); got != N {
		t.Errorf("dnsmasq has %d leases, want %d", got, N)
	}
	for i := range N {
		wg.Go(func() {
			if err := tp.m.Teardown(context.Background(), ctrs[i].Path(), opts[i]); err != nil {
				t.Errorf("teardown %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if !dhcpproxytest.WaitFor(3*time.Second, func() bool { return len(tp.lan.ServerLeases()) == 0 }) {
		t.Errorf("dnsmasq keeps %d leases after teardown", len(tp.lan.ServerLeases()))
	}
}

// A bridge in mode=unmanaged with ipam dhcp: the LAN's DHCP server answers
// through the existing bridge.
func TestPrivilegedUnmanagedBridgeDHCP(t *testing.T) {
	tp := newDHCPTopo(t, dhcpproxytest.LANOptions{}, dhcpproxy.Config{})
	h := nettest.Handle(t, tp.host.NetNS)
	run(t, tp.host, "ip", "link", "add", "lanbr0", "type", "bridge")
	run(t, tp.host, "ip", "link", "set", "lanparent", "master", "lanbr0")
	run(t, tp.host, "ip", "link", "set", "lanbr0", "up")
	n := network.Network{Name: "ubr", ID: fmt.Sprintf("%064x", 77), Driver: network.DriverBridge, NetworkInterface: "lanbr0",
		Options: map[string]string{"mode": "unmanaged"}, IPAMOptions: map[string]string{"driver": "dhcp"}}
	ctr, res := tp.container(t, dhcpOpts("u1", "u1", n))
	addr := leased(t, res["ubr"])
	if !dhcpproxytest.LANSubnet.Contains(addr.Addr()) {
		t.Errorf("lease %v", addr)
	}
	if routes := run(t, ctr, "ip", "-4", "route", "show", "default"); !strings.Contains(routes, "via 198.18.1.1") || !strings.Contains(routes, "metric 100") {
		t.Errorf("default route (bridge metric 100): %s", routes)
	}
	if _, err := h.ByName("lanbr0"); err != nil {
		t.Errorf("unmanaged bridge: %v", err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

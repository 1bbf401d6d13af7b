package dhcpproxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"google.golang.org/grpc/codes"

	"github.com/berthnet/berth/internal/dhcpproxy"
	"github.com/berthnet/berth/internal/dhcpproxy/dhcpproxytest"
	proxypb "github.com/berthnet/berth/internal/dhcpproxy/proto"
	"github.com/berthnet/berth/internal/nettest"
)

// macvlanCtr creates a container namespace with a macvlan eth0 on the
// LAN's parent, up and without an address.
func macvlanCtr(t *testing.T, lan *dhcpproxytest.LAN, name string) *nettest.NS {
	t.Helper()
	ctr := nettest.NewNS(t, name)
	hh := nettest.Handle(t, lan.Host.NetNS)
	parent, err := hh.ByName(lan.Parent)
	if err != nil {
		t.Fatal(err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "mvtmp" + name[len(name)-2:]
	attrs.ParentIndex = parent.Attrs().Index
	attrs.Namespace = netlink.NsFd(ctr.Fd())
	if err := hh.LinkAdd(&netlink.Macvlan{LinkAttrs: attrs, Mode: netlink.MACVLAN_MODE_BRIDGE}); err != nil {
		t.Fatalf("create macvlan: %v", err)
	}
	ch := nettest.Handle(t, ctr.NetNS)
	l, err := ch.ByName(attrs.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.LinkSetName(l, "eth0"); err != nil {
		t.Fatal(err)
	}
	if err := ch.Up(l); err != nil {
		t.Fatal(err)
	}
	return ctr
}

func dial(t *testing.T, p *dhcpproxytest.Proxy) *dhcpproxy.Client {
	t.Helper()
	c, err := dhcpproxy.Dial(p.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// cfgFor is the Setup of the container's eth0 (its MAC included, as
// netavark requires) with id as container ID and hostname.
func cfgFor(t *testing.T, ctr *nettest.NS, id string) *proxypb.NetworkConfig {
	t.Helper()
	return &proxypb.NetworkConfig{HostIface: "lanparent", ContainerIface: "eth0", ContainerMacAddr: macOf(t, ctr),
		NsPath: ctr.Path(), ContainerId: id, HostName: id}
}

// macOf returns the MAC of the container's eth0.
func macOf(t *testing.T, ctr *nettest.NS) string {
	t.Helper()
	l, err := nettest.Handle(t, ctr.NetNS).Link("eth0")
	if err != nil {
		t.Fatal(err)
	}
	return l.MAC.String()
}

func setup(t *testing.T, c *dhcpproxy.Client, cfg *proxypb.NetworkConfig) netip.Addr {
	t.Helper()
	l, err := c.Setup(context.Background(), cfg)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	ip, err := netip.ParseAddr(l.GetYiaddr())
	if err != nil || !dhcpproxytest.LANSubnet.Contains(ip) || l.GetSubnetMask() != "255.255.255.0" {
		t.Fatalf("lease %+v", l)
	}
	return ip
}

func addrOn(t *testing.T, ctr *nettest.NS) string {
	t.Helper()
	out, err := nettest.Run(ctr, 5*time.Second, "ip", "-4", "-o", "addr", "show", "eth0")
	if err != nil {
		t.Fatalf("ip addr: %v %s", err, out)
	}
	return out
}

func defaultRoute(t *testing.T, ctr *nettest.NS) string {
	t.Helper()
	out, _ := nettest.Run(ctr, 5*time.Second, "ip", "-4", "route", "show", "default")
	return strings.TrimSpace(out)
}

// proxyLeases reads the proxy's lease cache: MAC → leased address ("" when
// the lease is lost).
func proxyLeases(t *testing.T, p *dhcpproxytest.Proxy) map[string]string {
	t.Helper()
	b, err := os.ReadFile(p.LeaseFile())
	if err != nil {
		t.Fatalf("lease file: %v", err)
	}
	// netavark's form: MAC → [lease]; berth's record rides along.
	var f map[string][]struct {
		Yiaddr string `json:"yiaddr"`
		Berth  *struct {
			Lease *struct {
				Addr string `json:"addr"`
			} `json:"lease"`
		} `json:"berth"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("lease file: %v\n%s", err, b)
	}
	out := map[string]string{}
	for k, v := range f {
		out[k] = ""
		if len(v) == 1 && v[0].Berth != nil && v[0].Berth.Lease != nil {
			out[k] = v[0].Berth.Lease.Addr
			if want := strings.Split(out[k], "/")[0]; v[0].Yiaddr != want {
				t.Errorf("cache of %s: yiaddr %q, berth's lease %s", k, v[0].Yiaddr, out[k])
			}
		}
	}
	return out
}

func countACKs(t *testing.T, lan *dhcpproxytest.LAN, ip netip.Addr) int {
	t.Helper()
	b, _ := os.ReadFile(lan.Log)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "DHCPACK(eth0) "+ip.String()+" ") {
			n++
		}
	}
	return n
}

// Renewal at T1: dnsmasq's minimum lease is 2 minutes, so it sends T1 = 2 s
// and T2 = 4 s (options 58, 59). The proxy renews; dnsmasq moves the
// lease's expiry and logs another DHCPACK.
func TestPrivilegedProxyRenewal(t *testing.T) {
	lan := dhcpproxytest.NewLAN(t, dhcpproxytest.LANOptions{T1: 2, T2: 4})
	p := dhcpproxytest.StartProxy(t, dhcpproxy.Config{})
	c := dial(t, p)
	ctr := macvlanCtr(t, lan, "ctr01")
	ip := setup(t, c, cfgFor(t, ctr, "renew1"))
	first, ok := lan.ServerLease(ip)
	if !ok {
		t.Fatalf("dnsmasq has no lease for %v", ip)
	}
	if acks := countACKs(t, lan, ip); acks != 1 {
		t.Errorf("%d DHCPACKs before T1", acks)
	}
	if !dhcpproxytest.WaitFor(8*time.Second, func() bool { l, _ := lan.ServerLease(ip); return l.Expiry > first.Expiry }) {
		t.Fatalf("no renewal within 8 s (T1 = 2 s): %+v", lan.ServerLeases())
	}
	if !dhcpproxytest.WaitFor(6*time.Second, func() bool { return countACKs(t, lan, ip) >= 3 }) {
		t.Errorf("renewals did not continue: %d DHCPACKs", countACKs(t, lan, ip))
	}
	if out := addrOn(t, ctr); !strings.Contains(out, ip.String()+"/24") {
		t.Errorf("address lost during renewals: %s", out)
	}
	if r := defaultRoute(t, ctr); !strings.Contains(r, "via 198.18.1.1") || !strings.Contains(r, "metric 99") {
		t.Errorf("default route: %q", r)
	}
	b, _ := os.ReadFile(lan.Log)
	if !strings.Contains(string(b), "DHCPREQUEST(eth0) "+ip.String()) {
		t.Errorf("dnsmasq saw no DHCPREQUEST for %v", ip)
	}
	if _, err := c.Teardown(context.Background(), cfgFor(t, ctr, "renew1")); err != nil {
		t.Fatal(err)
	}
	if !dhcpproxytest.WaitFor(3*time.Second, func() bool { _, ok := lan.ServerLease(ip); return !ok }) {
		t.Errorf("lease not released")
	}
	if out := addrOn(t, ctr); strings.Contains(out, ip.String()) {
		t.Errorf("address stays after teardown: %s", out)
	}
}

// A restarted proxy resumes the leases from its cache and renews them.
func TestPrivilegedProxyRestartResumes(t *testing.T) {
	lan := dhcpproxytest.NewLAN(t, dhcpproxytest.LANOptions{T1: 3, T2: 6})
	p := dhcpproxytest.StartProxy(t, dhcpproxy.Config{})
	ctrs := []*nettest.NS{macvlanCtr(t, lan, "ctr01"), macvlanCtr(t, lan, "ctr02")}
	c := dial(t, p)
	ips := []netip.Addr{setup(t, c, cfgFor(t, ctrs[0], "rs1")), setup(t, c, cfgFor(t, ctrs[1], "rs2"))}
	c.Close()

	p.Stop()
	cached := proxyLeases(t, p)
	if len(cached) != 2 {
		t.Fatalf("lease cache after stop: %v", cached)
	}
	for _, ip := range ips {
		found := false
		for _, a := range cached {
			found = found || a == ip.String()+"/24"
		}
		if !found {
			t.Errorf("cache lacks %v: %v", ip, cached)
		}
	}
	// Stopping does not release: the addresses stay, dnsmasq keeps them.
	for i, ctr := range ctrs {
		if out := addrOn(t, ctr); !strings.Contains(out, ips[i].String()) {
			t.Errorf("address gone after the proxy stopped: %s", out)
		}
	}
	before := map[netip.Addr]int64{}
	for _, ip := range ips {
		l, _ := lan.ServerLease(ip)
		before[ip] = l.Expiry
	}
	time.Sleep(1100 * time.Millisecond)
	p.Start(t)
	for _, ip := range ips {
		if !dhcpproxytest.WaitFor(8*time.Second, func() bool { l, _ := lan.ServerLease(ip); return l.Expiry > before[ip] }) {
			t.Errorf("restarted proxy did not renew %v: %+v", ip, lan.ServerLeases())
		}
	}
	c = dial(t, p)
	for i, ctr := range ctrs {
		if _, err := c.Teardown(context.Background(), cfgFor(t, ctr, fmt.Sprintf("rs%d", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	if !dhcpproxytest.WaitFor(3*time.Second, func() bool { return len(lan.ServerLeases()) == 0 }) {
		t.Errorf("leases not released after restart: %+v", lan.ServerLeases())
	}
	if cached := proxyLeases(t, p); len(cached) != 0 {
		t.Errorf("cache after teardown: %v", cached)
	}
}

// A lease that can be neither renewed nor rebound is given up at its end:
// address and default route go. When the server is back, a new lease is
// acquired and configured. The proxy's timers run at 1/20 of the lease's
// (2 min → 6 s).
func TestPrivilegedProxyLeaseLost(t *testing.T) {
	lan := dhcpproxytest.NewLAN(t, dhcpproxytest.LANOptions{})
	p := dhcpproxytest.StartProxy(t, dhcpproxy.Config{TimeScale: 0.05, MinRetry: 300 * time.Millisecond})
	c := dial(t, p)
	ctr := macvlanCtr(t, lan, "ctr01")
	ip := setup(t, c, cfgFor(t, ctr, "lost1"))
	lan.Stop()
	start := time.Now()
	if !dhcpproxytest.WaitFor(15*time.Second, func() bool { return !strings.Contains(addrOn(t, ctr), ip.String()) }) {
		t.Fatalf("address kept after the lease ended: %s", addrOn(t, ctr))
	}
	t.Logf("address removed %v after the server went away", time.Since(start).Round(100*time.Millisecond))
	if r := defaultRoute(t, ctr); r != "" {
		t.Errorf("default route kept: %q", r)
	}
	for mac, a := range proxyLeases(t, p) {
		if a != "" {
			t.Errorf("cache still has %s for %s", a, mac)
		}
	}
	lan.Start(t)
	if !dhcpproxytest.WaitFor(15*time.Second, func() bool { return strings.Contains(addrOn(t, ctr), "198.18.1.") }) {
		t.Fatalf("no new lease after the server came back")
	}
	if !dhcpproxytest.WaitFor(3*time.Second, func() bool { return strings.Contains(defaultRoute(t, ctr), "via 198.18.1.1") }) {
		t.Errorf("default route not back: %q", defaultRoute(t, ctr))
	}
	if _, err := c.Teardown(context.Background(), cfgFor(t, ctr, "lost1")); err != nil {
		t.Fatal(err)
	}
}

// 20 containers lease at once through direct calls (the front-end
// serialises setups; the proxy itself does not).
func TestPrivilegedProxyConcurrent(t *testing.T) {
	lan := dhcpproxytest.NewLAN(t, dhcpproxytest.LANOptions{})
	p := dhcpproxytest.StartProxy(t, dhcpproxy.Config{})
	c := dial(t, p)
	const N = 20
	ctrs := make([]*nettest.NS, N)
	for i := range N {
		ctrs[i] = macvlanCtr(t, lan, fmt.Sprintf("ctr%02d", i))
	}
	ips := make([]netip.Addr, N)
	errs := make([]error, N)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range N {
		wg.Go(func() {
			l, err := c.Setup(context.Background(), cfgFor(t, ctrs[i], fmt.Sprintf("cc%02d", i)))
			if err != nil {
				errs[i] = err
				return
			}
			ips[i], errs[i] = netip.ParseAddr(l.GetYiaddr())
		})
	}
	wg.Wait()
	t.Logf("%d concurrent leases in %v", N, time.Since(start))
	seen := map[netip.Addr]bool{}
	for i := range N {
		if errs[i] != nil {
			t.Errorf("container %d: %v", i, errs[i])
			continue
		}
		if seen[ips[i]] {
			t.Errorf("%v leased twice", ips[i])
		}
		seen[ips[i]] = true
		if out := addrOn(t, ctrs[i]); !strings.Contains(out, ips[i].String()) {
			t.Errorf("container %d lacks %v", i, ips[i])
		}
	}
	if n := len(proxyLeases(t, p)); n != N {
		t.Errorf("cache holds %d leases", n)
	}
	// Clean releases them all.
	if err := c.Clean(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !dhcpproxytest.WaitFor(3*time.Second, func() bool { return len(lan.ServerLeases()) == 0 }) {
		t.Errorf("dnsmasq keeps %d leases after Clean", len(lan.ServerLeases()))
	}
}

func TestPrivilegedProxyBadRequests(t *testing.T) {
	lan := dhcpproxytest.NewLAN(t, dhcpproxytest.LANOptions{})
	p := dhcpproxytest.StartProxy(t, dhcpproxy.Config{})
	c := dial(t, p)
	ctr := macvlanCtr(t, lan, "ctr01")
	mac := macOf(t, ctr)
	for _, tc := range []struct {
		name string
		cfg  *proxypb.NetworkConfig
		code codes.Code
		msg  string
	}{
		{"ipv6", &proxypb.NetworkConfig{ContainerIface: "eth0", NsPath: ctr.Path(), Version: proxypb.Version_V6}, codes.Unimplemented, "ipv6 not yet supported"},
		{"no namespace", &proxypb.NetworkConfig{ContainerIface: "eth0", NsPath: "/nonexistent/ns", ContainerMacAddr: mac}, codes.InvalidArgument, "open namespace /nonexistent/ns"},
		{"no interface", &proxypb.NetworkConfig{ContainerIface: "eth9", NsPath: ctr.Path(), ContainerMacAddr: mac}, codes.InvalidArgument, `container interface "eth9": eth9: link not found`},
		{"empty interface", &proxypb.NetworkConfig{ContainerIface: "", NsPath: ctr.Path(), ContainerMacAddr: mac}, codes.InvalidArgument, `container interface "": link not found`},
		{"wrong mac", &proxypb.NetworkConfig{ContainerIface: "eth0", NsPath: ctr.Path(), ContainerMacAddr: "02:00:00:00:00:01"}, codes.InvalidArgument, "not 02:00:00:00:00:01"},
		{"empty mac", &proxypb.NetworkConfig{ContainerIface: "eth0", NsPath: ctr.Path()}, codes.InvalidArgument, `container_mac_addr "": an octet is empty`},
		{"bad mac", &proxypb.NetworkConfig{ContainerIface: "eth0", NsPath: ctr.Path(), ContainerMacAddr: "123"}, codes.InvalidArgument, `container_mac_addr "123": an octet exceeds ff`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Setup(context.Background(), tc.cfg)
			pe, ok := err.(*dhcpproxy.Error)
			if !ok || pe.Code != tc.code || !strings.Contains(pe.Msg, tc.msg) {
				t.Errorf("error %#v, want %v %q", err, tc.code, tc.msg)
			}
		})
	}
	// Teardown of an unknown interface succeeds with an empty lease.
	l, err := c.Teardown(context.Background(), cfgFor(t, ctr, "unknown"))
	if err != nil || l.GetYiaddr() != "" {
		t.Errorf("teardown of nothing: %v %v", l, err)
	}
	if len(lan.ServerLeases()) != 0 {
		t.Errorf("leases: %+v", lan.ServerLeases())
	}
}

// A container that goes without a teardown: at its next renewal the proxy
// finds the interface gone and forgets the lease.
func TestPrivilegedProxyForgetsGoneInterface(t *testing.T) {
	lan := dhcpproxytest.NewLAN(t, dhcpproxytest.LANOptions{T1: 1, T2: 3})
	p := dhcpproxytest.StartProxy(t, dhcpproxy.Config{})
	c := dial(t, p)
	ctr := macvlanCtr(t, lan, "ctr01")
	setup(t, c, cfgFor(t, ctr, "gone1"))
	if n := len(proxyLeases(t, p)); n != 1 {
		t.Fatalf("cache holds %d leases", n)
	}
	if out, err := nettest.Run(ctr, 5*time.Second, "ip", "link", "del", "eth0"); err != nil {
		t.Fatalf("delete eth0: %v %s", err, out)
	}
	if !dhcpproxytest.WaitFor(5*time.Second, func() bool { return len(proxyLeases(t, p)) == 0 }) {
		t.Errorf("lease of a deleted interface still cached: %v", proxyLeases(t, p))
	}
}

// nameCounts reads dnsmasq's log for the transactions of mac: how many
// DHCPDISCOVERs and DHCPREQUESTs it got, and how many of its messages
// carried a hostname ("client provides name", logged per message).
func nameCounts(t *testing.T, lan *dhcpproxytest.LAN, mac string) (msgs int, names map[string]int) {
	t.Helper()
	b, _ := os.ReadFile(lan.Log)
	xids := map[string]bool{}
	lines := strings.Split(string(b), "\n")
	for _, line := range lines {
		f := strings.Fields(line)
		for i, w := range f {
			if (strings.HasPrefix(w, "DHCPDISCOVER(") || strings.HasPrefix(w, "DHCPREQUEST(")) && strings.Contains(line, " "+mac) && i > 0 {
				xids[f[i-1]] = true
				msgs++
			}
		}
	}
	names = map[string]int{}
	for _, line := range lines {
		_, name, ok := strings.Cut(line, " client provides name: ")
		if !ok {
			continue
		}
		f := strings.Fields(strings.TrimSuffix(line, " client provides name: "+name))
		if len(f) > 0 && xids[f[len(f)-1]] {
			names[strings.TrimSpace(name)]++
		}
	}
	return msgs, names
}

// The container's hostname goes in every DHCPDISCOVER and DHCPREQUEST,
// renewals included (option 12, as netavark sends it); without a hostname
// none is sent.
func TestPrivilegedProxyHostname(t *testing.T) {
	lan := dhcpproxytest.NewLAN(t, dhcpproxytest.LANOptions{T1: 2, T2: 4})
	p := dhcpproxytest.StartProxy(t, dhcpproxy.Config{})
	c := dial(t, p)
	named, anon := macvlanCtr(t, lan, "ctr01"), macvlanCtr(t, lan, "ctr02")
	ip := setup(t, c, cfgFor(t, named, "web01"))
	cfg := cfgFor(t, anon, "anon1")
	cfg.HostName = ""
	setup(t, c, cfg)
	if !dhcpproxytest.WaitFor(8*time.Second, func() bool { return countACKs(t, lan, ip) >= 2 }) {
		t.Fatalf("no renewal within 8 s (T1 = 2 s)")
	}
	msgs, names := nameCounts(t, lan, macOf(t, named))
	if msgs < 3 || names["web01"] != msgs || len(names) != 1 {
		t.Errorf("%d DISCOVERs and REQUESTs, hostnames %v; want web01 in each", msgs, names)
	}
	if msgs, names := nameCounts(t, lan, macOf(t, anon)); msgs < 2 || len(names) != 0 {
		t.Errorf("without a hostname: %d DISCOVERs and REQUESTs, hostnames %v", msgs, names)
	}
}

package pasta

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/berthnet/berth/internal/usernet"
)

// fakeHost swaps the host reader for one that knows the given families.
func fakeHost(t *testing.T, v4, v6 *usernet.HostFamily) {
	t.Helper()
	old := hostReader
	t.Cleanup(func() { hostReader = old })
	hostReader = func(isV6 bool, ifname string) (usernet.HostFamily, error) {
		f := v4
		if isV6 {
			f = v6
		}
		if f == nil || ifname != "" && ifname != f.IfName {
			return usernet.HostFamily{}, usernet.ErrNoHostRoute
		}
		return *f, nil
	}
}

var (
	host4 = &usernet.HostFamily{IfName: "eth0", Addr: netip.MustParsePrefix("198.18.0.2/24"), Gateway: netip.MustParseAddr("198.18.0.1"),
		Routes: []netip.Prefix{netip.MustParsePrefix("198.19.0.0/16")}}
	host6 = &usernet.HostFamily{IfName: "eth0", Addr: netip.MustParsePrefix("fd18::2/64"), Gateway: netip.MustParseAddr("fe80::1")}
)

func planOf(t *testing.T, args ...string) (usernet.Config, error) {
	t.Helper()
	o, err := Parse(append(args, "--netns", "/run/netns/x"))
	if err != nil {
		t.Fatal(err)
	}
	return plan(o)
}

func TestPlanCopiesTheHost(t *testing.T) {
	fakeHost(t, host4, host6)
	cfg, err := planOf(t, "--config-net", "--dns-forward", "169.254.1.1", "--no-map-gw", "--map-guest-addr", "169.254.1.2")
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Pasta
	if p.IfName != "eth0" || p.Addr4 != host4.Addr || p.Gateway4 != host4.Gateway || p.Addr6 != host6.Addr || p.Gateway6 != host6.Gateway {
		t.Fatalf("plan %+v does not copy the host", p)
	}
	if !slices.Equal(p.Routes, host4.Routes) || len(p.MapHostLoopback) != 0 || cfg.MTU != usernet.DefaultMTU || !cfg.IPv6 {
		t.Fatalf("routes %v, loopback map %v, mtu %d, ipv6 %v", p.Routes, p.MapHostLoopback, cfg.MTU, cfg.IPv6)
	}
	if h, ok := cfg.Translate(netip.MustParseAddr("169.254.1.2")); !ok || h != host4.Addr.Addr() {
		t.Fatalf("mapped guest address reaches %s %v, want the host's %s", h, ok, host4.Addr.Addr())
	}
}

func TestPlanOptions(t *testing.T) {
	fakeHost(t, host4, host6)
	cfg, err := planOf(t, "--config-net", "-4", "-a", "10.0.2.100", "-n", "24", "-g", "10.0.2.2", "-I", "tap9", "-m", "1500", "--no-copy-routes")
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Pasta
	if p.IfName != "tap9" || p.Addr4 != netip.MustParsePrefix("10.0.2.100/24") || p.Gateway4 != netip.MustParseAddr("10.0.2.2") || p.Addr6.IsValid() || cfg.MTU != 1500 || len(p.Routes) != 0 {
		t.Fatalf("plan %+v mtu %d", p, cfg.MTU)
	}
	// The gateway stands for the host's loopback by default (no --no-map-gw).
	if h, ok := cfg.Translate(netip.MustParseAddr("10.0.2.2")); !ok || !h.IsLoopback() {
		t.Fatalf("gateway reaches %s %v, want the host's loopback", h, ok)
	}
	// The host's own address is what a mapped guest address reaches, even
	// when the guest's is another.
	if p.HostAddr4 != host4.Addr.Addr() {
		t.Fatalf("host address %s, want %s", p.HostAddr4, host4.Addr.Addr())
	}
}

func TestPlanWithoutIPv6Route(t *testing.T) {
	fakeHost(t, host4, nil)
	cfg, err := planOf(t, "--config-net")
	if err != nil {
		t.Fatalf("a host without an IPv6 default route must work IPv4-only: %v", err)
	}
	if cfg.IPv6 || cfg.Pasta.Addr6.IsValid() {
		t.Fatalf("IPv6 on: %+v", cfg.Pasta)
	}
	if _, err := planOf(t, "--config-net", "-6"); err == nil {
		t.Fatal("-6 on a host without IPv6 must fail")
	}
}

func TestPlanLocalMode(t *testing.T) {
	fakeHost(t, nil, nil)
	cfg, err := planOf(t, "--config-net", "--no-map-gw", "--map-guest-addr", "169.254.1.2")
	if err != nil {
		t.Fatal(err)
	}
	if !isLocal(cfg.Pasta) || cfg.Pasta.IfName != "tap0" {
		t.Fatalf("plan %+v, want local mode", cfg.Pasta)
	}
	if h, ok := cfg.Translate(netip.MustParseAddr("169.254.1.2")); !ok || !h.IsLoopback() {
		t.Fatalf("in local mode the mapped guest address reaches %s %v, want the host's loopback", h, ok)
	}
	if _, err := planOf(t, "--config-net", "-i", "eth7"); err == nil {
		t.Fatal("an interface named with -i that has no route must fail, not fall back")
	}
}

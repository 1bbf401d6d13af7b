package core_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

// dnsFiles lists the files in the aardvark-dns directory (none when it
// does not exist).
func dnsFiles(t *testing.T, tp *topo) []string {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(tp.cfgDir, "aardvark-dns"))
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// A DNS server path that exists but cannot be run fails the setup (DNS is
// not silently off), which leaves no entry and no link behind.
func TestPrivilegedUnusableAardvarkBinary(t *testing.T) {
	bin := t.TempDir() // a directory
	tp := newTopo(t, nil, func(c *core.Config) { c.AardvarkBinary = bin })
	n := bridgeNet("dnsbad", "bdnsb0", "198.19.64.0/24", "198.19.64.1")
	n.DNSEnabled = true
	o := opts("d1", "dnsbad", n, "198.19.64.2")
	ctr := nettest.NewNS(t, nettest.RandName("ctr"))
	_, err := tp.m.Setup(context.Background(), ctr.Path(), o)
	if err == nil || !strings.Contains(err.Error(), "aardvark-dns failed to start: Failed to find executable") {
		t.Fatalf("setup with a directory as the DNS server: %v", err)
	}
	if left := dnsFiles(t, tp); len(left) > 0 {
		t.Errorf("entries left after the failed setup: %v", left)
	}
	if links := nettest.Links(t, ctr); len(links) != 1 {
		t.Errorf("container keeps %v", links)
	}
	// A server that exits at once with nothing on stderr says so.
	tp.m = newManager(t, tp, "/bin/false")
	_, err = tp.m.Setup(context.Background(), ctr.Path(), o)
	var ds *network.DNSStartError
	if !errors.As(err, &ds) || ds.Stderr != "" || !strings.Contains(err.Error(), "error while applying dns entries") {
		t.Fatalf("setup with /bin/false as the DNS server: %v, want a DNSStartError with nothing on stderr", err)
	}
}

// newManager is a manager on tp's host and state with DNS server bin.
func newManager(t *testing.T, tp *topo, bin string) *core.Manager {
	t.Helper()
	m, err := core.New(core.Config{ConfigDir: tp.cfgDir, Firewall: tp.fw, HostNS: tp.host.NetNS, AardvarkBinary: bin})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A container DNS server or a network DNS server that is a gateway of one
// of the container's DNS-enabled networks is refused before any entry is
// written: the DNS server would forward queries to itself.
func TestPrivilegedDNSLoopRejected(t *testing.T) {
	bin := t.TempDir() // never started: the check comes first
	tp := newTopo(t, nil, func(c *core.Config) { c.AardvarkBinary = bin })
	n := bridgeNet("dnsloop", "bdnsl0", "198.19.65.0/24", "198.19.65.1")
	n.DNSEnabled = true
	gw := netip.MustParseAddr("198.19.65.1")
	for _, tc := range []struct {
		name       string
		ctr, netw  []netip.Addr
		wantPrefix string
	}{
		{"container", []netip.Addr{netip.MustParseAddr("198.19.0.9"), gw}, nil, `DNS server 198.19.65.1 is the gateway of network "dnsloop"`},
		{"network", nil, []netip.Addr{gw}, `network DNS server 198.19.65.1 matches the gateway of network "dnsloop"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nn := n
			nn.NetworkDNSServers = tc.netw
			o := opts("l"+tc.name, "dnsloop", nn, "198.19.65.2")
			o.DNSServers = tc.ctr
			ctr := nettest.NewNS(t, nettest.RandName("ctr"))
			_, err := tp.m.Setup(context.Background(), ctr.Path(), o)
			if !errors.Is(err, core.ErrDNSLoop) || !strings.Contains(err.Error(), tc.wantPrefix) {
				t.Fatalf("setup: %v", err)
			}
			if _, err := os.Stat(filepath.Join(tp.cfgDir, "aardvark-dns")); err != nil {
				t.Errorf("aardvark-dns directory: %v", err)
			}
			if left := dnsFiles(t, tp); len(left) > 0 {
				t.Errorf("entries written: %v", left)
			}
			if links := nettest.Links(t, ctr); len(links) != 1 {
				t.Errorf("container keeps %v", links)
			}
		})
	}
}

// On an unmanaged bridge the gateway may be a router elsewhere: the DNS
// server listens on the bridge's own addresses (not its IPv6 link-local
// one) and answers there; a bridge without one is a clear error.
func TestPrivilegedUnmanagedBridgeDNS(t *testing.T) {
	tp := dnsTopo(t)
	run(t, tp.host, "ip", "link", "add", "bumdns0", "type", "bridge")
	run(t, tp.host, "ip", "link", "set", "bumdns0", "up")
	n := bridgeNet("umdns", "bumdns0", "198.19.66.0/24", "198.19.66.254")
	n.Options = map[string]string{"mode": "unmanaged"}
	n.DNSEnabled = true

	o := opts("u1", "web", n, "198.19.66.2")
	ns := nettest.NewNS(t, nettest.RandName("ctr"))
	if _, err := tp.m.Setup(context.Background(), ns.Path(), o); !errors.Is(err, core.ErrNoDNSAddress) || !strings.Contains(err.Error(), "bridge 'bumdns0' in unmanaged mode has no usable IP addresses") {
		t.Fatalf("unmanaged bridge without an address: %v", err)
	}

	run(t, tp.host, "ip", "addr", "add", "198.19.66.100/24", "dev", "bumdns0")
	ctr, res := tp.container(t, o)
	if got := res["umdns"].DNSServerIPs; !slices.Equal(got, []netip.Addr{netip.MustParseAddr("198.19.66.100")}) {
		t.Errorf("status DNS servers %v, want the bridge's address", got)
	}
	f, err := tp.m.DNSEntries("umdns")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.Header.BindIPs, []netip.Addr{netip.MustParseAddr("198.19.66.100")}) {
		t.Errorf("DNS server listens on %v", f.Header.BindIPs)
	}
	r, err := lookupA(ctr, "web", "198.19.66.100:53")
	if err != nil || len(r.Answer) != 1 || r.Answer[0].(*mdns.A).A.String() != "198.19.66.2" {
		t.Errorf("lookup on the bridge's address: %v %v", r, err)
	}
}

// berth's callers get an alias that cannot be a DNS name refused with a
// message naming it (the netavark front-end drops such aliases itself,
// with netavark 2.1's warning, before they reach the core); nothing is
// made.
func TestPrivilegedInvalidAliasesRefused(t *testing.T) {
	tp := dnsTopo(t)
	n := bridgeNet("alias", "balias0", "198.19.67.0/24", "198.19.67.1")
	n.DNSEnabled = true
	o := opts("al1", "somename", n, "198.19.67.2")
	o.Networks[0].Aliases = []string{"valid", "space 1"}
	ns := nettest.NewNS(t, nettest.RandName("ctr"))
	if _, err := tp.m.Setup(context.Background(), ns.Path(), o); err == nil || !strings.Contains(err.Error(), `"space 1"`) {
		t.Fatalf("setup with an alias holding a space: %v", err)
	}
	if links := nettest.Links(t, ns); len(links) != 1 {
		t.Errorf("the refused setup left links %v", links)
	}
}

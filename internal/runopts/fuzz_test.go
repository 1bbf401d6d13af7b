package runopts

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/network"
)

// FuzzParsePublish: no -p or --expose value panics; every mapping
// accepted has a protocol, ports in 1-65535 (host port 0 = random), a
// range that stays below 65536 and a host IP that parses; an exposed port
// formats back to itself.
func FuzzParsePublish(f *testing.F) {
	for _, s := range []string{"8080:80", "80", "127.0.0.1:8080:80/tcp", "[::1]:8080:80/udp", "0.0.0.0::80", "8000-8010:80-90", "53:53/tcp,udp",
		"10.0.0.1:1000-1001:2000-2001/sctp", "[fd00::1]::443", "65535:65535", "80-80/udp", "1:2:3:4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if pms, err := ParsePublish(s); err == nil {
			for _, pm := range pms {
				checkMapping(t, s, pm)
			}
		}
		e, err := ParseExpose(s)
		if err != nil {
			return
		}
		checkMapping(t, s, e)
		again, err := ParseExpose(FormatExpose(e))
		if err != nil || again != e {
			t.Fatalf("--expose %q: %+v formats as %q, which parses to %+v, %v", s, e, FormatExpose(e), again, err)
		}
	})
}

func checkMapping(t *testing.T, s string, pm network.PortMapping) {
	switch pm.Protocol {
	case "tcp", "udp", "sctp":
	default:
		t.Fatalf("%q: protocol %q", s, pm.Protocol)
	}
	n := pm.Ports()
	if pm.ContainerPort == 0 || int(pm.ContainerPort)+n-1 > 65535 || (pm.HostPort != 0 && int(pm.HostPort)+n-1 > 65535) {
		t.Fatalf("%q: ports out of range: %+v", s, pm)
	}
	if _, err := pm.HostAddr(); err != nil {
		t.Fatalf("%q: host ip %q: %v", s, pm.HostIP, err)
	}
}

// FuzzParseNetworks: no --network values (one per line) panic; a result
// has a known kind, the networks only where the kind has them, no network
// twice and every per-network option valid.
func FuzzParseNetworks(f *testing.F) {
	for _, s := range []string{"", "bridge", "none", "host", "container:web", "ns:/run/netns/x", "slirp4netns:allow_host_loopback=true,cidr=10.5.0.0/24,mtu=1500",
		"net1:ip=10.89.0.5,mac=92:d0:c6:0a:29:33,alias=web,interface_name=eth1\nnet2:ip6=fd00::5", "a,b,c", "private", "pasta", "pasta:-t,8080,-u,53", "net1:alias=x,alias=y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var values []string
		if in != "" {
			values = strings.Split(in, "\n")
		}
		m, err := ParseNetworks(values)
		if err != nil {
			return
		}
		switch m.Kind {
		case ModeBridge:
			if len(m.Networks) == 0 {
				t.Fatalf("%q: bridge mode without networks", in)
			}
		case ModeNone, ModeHost, ModeContainer, ModeNS, ModeSlirp, ModePasta:
			if len(m.Networks) != 0 || len(values) > 1 {
				t.Fatalf("%q: mode %s with networks %+v", in, m.Kind, m.Networks)
			}
		default:
			t.Fatalf("%q: unknown kind %q", in, m.Kind)
		}
		seen := map[string]bool{}
		for _, r := range m.Networks {
			if seen[r.Name] {
				t.Fatalf("%q: network %q twice", in, r.Name)
			}
			seen[r.Name] = true
			for _, ip := range r.IPs {
				if !ip.IsValid() || ip.Is4In6() {
					t.Fatalf("%q: address %v", in, ip)
				}
			}
			if r.MAC != "" {
				if _, err := network.ParseMAC(r.MAC); err != nil {
					t.Fatalf("%q: %v", in, err)
				}
			}
			for _, a := range r.Aliases {
				if checkAlias(a) != nil {
					t.Fatalf("%q: alias %q", in, a)
				}
			}
			if len(r.Interface) > 15 || strings.ContainsAny(r.Interface, "/ :") {
				t.Fatalf("%q: interface name %q", in, r.Interface)
			}
		}
	})
}

// FuzzParseAddHost: no --add-host value panics; an accepted entry has
// names without blanks and an address (or host-gateway), and written back
// as NAME;NAME:IP it parses to itself.
func FuzzParseAddHost(f *testing.F) {
	for _, s := range []string{"db:10.0.0.5", "a;b:fd00::1", "gw:host-gateway", "v6:[2001:db8::1]", "h:::ffff:10.1.2.3", "x:1.2.3", ":1.1.1.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseAddHost(s)
		if err != nil {
			return
		}
		if h.IP != HostGateway {
			a, err := netip.ParseAddr(h.IP)
			if err != nil || a.Is4In6() {
				t.Fatalf("%q: address %q", s, h.IP)
			}
		}
		if len(h.Names) == 0 {
			t.Fatalf("%q: no names", s)
		}
		for _, n := range h.Names {
			if n == "" || strings.ContainsAny(n, " \t:;") {
				t.Fatalf("%q: name %q", s, n)
			}
		}
		again, err := ParseAddHost(strings.Join(h.Names, ";") + ":" + h.IP)
		if err != nil || strings.Join(again.Names, ";") != strings.Join(h.Names, ";") || again.IP != h.IP {
			t.Fatalf("%q: %+v does not round-trip: %+v, %v", s, h, again, err)
		}
	})
}

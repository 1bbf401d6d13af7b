package usernet

import (
	"errors"
	"net/netip"
	"testing"
)

func pastaConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := Config{Pasta: &PastaPlan{
		IfName: "eth0",
		Addr4:  netip.MustParsePrefix("198.18.0.2/24"), Gateway4: netip.MustParseAddr("198.18.0.1"),
		Addr6: netip.MustParsePrefix("fd18::2/64"), Gateway6: netip.MustParseAddr("fe80::1"),
		DNSForward:      []netip.Addr{netip.MustParseAddr("169.254.1.1")},
		MapGuest:        []netip.Addr{netip.MustParseAddr("169.254.1.2")},
		MapHostLoopback: []netip.Addr{netip.MustParseAddr("198.18.0.1")},
	}}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestPastaTranslate(t *testing.T) {
	cfg := pastaConfig(t)
	if !cfg.IPv6 || cfg.Guest() != netip.MustParseAddr("198.18.0.2") || cfg.Guest6() != netip.MustParseAddr("fd18::2") {
		t.Fatalf("guest addresses %s %s ipv6=%v", cfg.Guest(), cfg.Guest6(), cfg.IPv6)
	}
	for _, tc := range []struct {
		dst, want string // want "" : refused
	}{
		{"169.254.1.2", "198.18.0.2"}, // the host's own address
		{"198.18.0.1", "127.0.0.1"},   // the gateway mapped to the host's loopback
		{"169.254.1.1", ""},           // DNS only, inside the stack
		{"198.18.0.2", ""},            // the guest itself
		{"198.18.0.7", "198.18.0.7"},  // a neighbour on the host's LAN
		{"203.0.113.9", "203.0.113.9"},
		{"2001:db8::9", "2001:db8::9"},
		{"fe80::1", "fe80::1"}, // the IPv6 gateway, not mapped
		{"fe80::7", ""},
		{"127.0.0.1", ""},
		{"224.0.0.1", ""},
		{"0.0.0.0", ""},
	} {
		got, ok := cfg.Translate(netip.MustParseAddr(tc.dst))
		if tc.want == "" && ok || tc.want != "" && (!ok || got != netip.MustParseAddr(tc.want)) {
			t.Errorf("Translate(%s) = %s %v, want %q", tc.dst, got, ok, tc.want)
		}
	}
	if a := cfg.dnsAddrs(); len(a) != 1 || a[0] != netip.MustParseAddr("169.254.1.1") {
		t.Errorf("dns addresses %v", a)
	}
	if !cfg.answersEcho(netip.MustParseAddr("169.254.1.1")) || cfg.answersEcho(netip.MustParseAddr("169.254.1.2")) {
		t.Error("echo: the stack answers for the DNS address, the mapped guest address is relayed to the host")
	}
}

func TestPastaSource(t *testing.T) {
	p := *pastaConfig(t).Pasta
	guest4 := netip.MustParseAddr("198.18.0.2")
	for _, tc := range []struct {
		client, want string
		keep         bool
	}{
		{"198.18.1.5", "198.18.1.5", true},
		{"198.18.0.7", "198.18.0.7", true},   // a LAN neighbour: answered by proxy ARP
		{"198.18.0.2", "169.254.1.2", false}, // the host by its own address
		{"127.0.0.1", "198.18.0.1", false},   // loopback: the mapped gateway
		{"::1", "198.18.0.1", false},
	} {
		got, keep := p.sourceFor(netip.MustParseAddr(tc.client), guest4)
		if got != netip.MustParseAddr(tc.want) || keep != tc.keep {
			t.Errorf("sourceFor(%s) = %s %v, want %s %v", tc.client, got, keep, tc.want, tc.keep)
		}
	}
	p.MapHostLoopback = nil
	if got, _ := p.sourceFor(netip.MustParseAddr("127.0.0.1"), guest4); got != p.Gateway4 {
		t.Errorf("loopback client without a mapping: %s, want the gateway", got)
	}
}

func TestPastaPlanRejects(t *testing.T) {
	for name, p := range map[string]PastaPlan{
		"no address":   {},
		"gw family":    {Addr4: netip.MustParsePrefix("198.18.0.2/24"), Gateway4: netip.MustParseAddr("fe80::1")},
		"gw is guest":  {Addr4: netip.MustParsePrefix("198.18.0.2/24"), Gateway4: netip.MustParseAddr("198.18.0.2")},
		"map to guest": {Addr4: netip.MustParsePrefix("198.18.0.2/24"), Gateway4: netip.MustParseAddr("198.18.0.1"), MapGuest: []netip.Addr{netip.MustParseAddr("198.18.0.2")}},
		"map loopback": {Addr4: netip.MustParsePrefix("198.18.0.2/24"), Gateway4: netip.MustParseAddr("198.18.0.1"), DNSForward: []netip.Addr{netip.MustParseAddr("127.0.0.1")}},
	} {
		if _, err := (Config{Pasta: &p}).WithDefaults(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err %v, want ErrInvalidConfig", name, err)
		}
	}
}

const procTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0200A8C0:D2F0 0100A8C0:0050 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
   3: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
`

func TestParseBoundPorts(t *testing.T) {
	got := ParseBoundPorts([]byte(procTCP), false)
	if len(got) != 2 || got[0] != 80 || got[1] != 8080 {
		t.Fatalf("tcp listeners %v, want [80 8080]", got)
	}
	if got := ParseBoundPorts([]byte(procTCP), true); len(got) != 0 {
		t.Fatalf("udp reading of a tcp table: %v", got)
	}
	udp := "  sl  local_address rem_address   st\n 5: 00000000:0035 00000000:0000 07 0\n"
	if got := ParseBoundPorts([]byte(udp), true); len(got) != 1 || got[0] != 53 {
		t.Fatalf("udp %v", got)
	}
}

func FuzzParseBoundPorts(f *testing.F) {
	f.Add([]byte(procTCP), false)
	f.Add([]byte(" 0: 00000000:0035 00000000:0000 07 x"), true)
	f.Add([]byte(" 0: 0:FFFFF 0 0A"), false)
	f.Fuzz(func(t *testing.T, b []byte, udp bool) {
		ports := ParseBoundPorts(b, udp)
		for i, p := range ports {
			if p == 0 || i > 0 && ports[i-1] >= p {
				t.Fatalf("ports %v: must be sorted, unique and non-zero", ports)
			}
		}
	})
}

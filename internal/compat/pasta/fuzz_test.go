package pasta

import (
	"strings"
	"testing"
)

// checkForwards fails unless every forward is a well-formed range and no
// two forwards listen on a common port of a common address.
func checkForwards(t *testing.T, ps PortSpec) {
	t.Helper()
	for i, f := range ps.Forwards {
		if f.First == 0 || f.First > f.Last || f.To == 0 || int(f.To)+int(f.Last-f.First) > 65535 {
			t.Fatalf("bad forward %+v", f)
		}
		if len(f.Iface) > maxIfname || f.Addr.Zone() != "" {
			t.Fatalf("bad binding %+v", f)
		}
		for _, g := range ps.Forwards[:i] {
			if overlaps(f, g) {
				t.Fatalf("forwards %+v and %+v overlap", f, g)
			}
		}
	}
	if ps.Mode != PortSpecific && ps.Mode != PortAll && len(ps.Forwards) != 0 {
		t.Fatalf("mode %v with forwards", ps.Mode)
	}
}

// FuzzParsePortSpec: no spec makes the parser panic, and what it accepts
// is a set of ranges within 1-65535, First <= Last, without overlap.
func FuzzParsePortSpec(f *testing.F) {
	for _, s := range []string{"none", "auto", "all", "22", "22:23", "22,25", "22-80:32-90", "8080-8080:80-80",
		"127.0.0.1/8080-8080:80-80", "::1/8080-8080:80-80", "[::1]/80", "fe80::1%eth0/22", "%eth0/22", "*/22",
		"5-25,~10-20", "~25", "~1-1024,~65535", "80,80", "~80,~79-81", "99999", "0", "", ",", "1-65535:1-65535"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, spec string, host bool) {
		ps, err := ParsePortSpec(spec, host)
		if err != nil {
			if _, ok := err.(*UsageError); !ok || err.Error() == "" {
				t.Fatalf("error %#v", err)
			}
			return
		}
		if !host && strings.Contains(spec, "/") {
			t.Fatalf("-T/-U spec %q with an address accepted", spec)
		}
		checkForwards(t, ps)
	})
}

// FuzzParse: no command line makes Parse panic; accepted ones keep the
// invariants of the port specs and of the scalar options.
func FuzzParse(f *testing.F) {
	f.Add(strings.Join(podman6, "\n"))
	f.Add(strings.Join(podman6NoPorts, "\n"))
	f.Add("--config-net\n--map-gw\n-t\n8080\n-t\n8080\n--netns\n/x")
	f.Add("-46dq\n-tnone\n--ipv4\n--netns=foo")
	f.Add("-f\nip\n-d\nlink")
	f.Add("--tcp\n80")
	f.Add("-m\n0x5dc\n-n\n255.255.255.0\n-a\n10.0.2.100\n1234")
	f.Fuzz(func(t *testing.T, line string) {
		o, err := Parse(strings.Split(line, "\n"))
		if err != nil {
			if _, ok := err.(*UsageError); !ok || err.Error() == "" {
				t.Fatalf("error %#v", err)
			}
			return
		}
		if o.Help || o.Version {
			return
		}
		for _, ps := range []PortSpec{o.TCP, o.UDP, o.TCPNS, o.UDPNS} {
			checkForwards(t, ps)
		}
		if o.MTU != -1 && (o.MTU < 0 || o.MTU > 65535 || o.MTU > 0 && o.MTU < 68) {
			t.Fatalf("MTU %d", o.MTU)
		}
		if o.Netmask < -1 || o.Netmask > 32 || len(o.Addrs) > 2 || len(o.Gateways) > 2 ||
			len(o.DNSForward) > 2 || len(o.Outbound) > 2 || o.IPv4Only && o.IPv6Only {
			t.Fatalf("options %+v", o)
		}
		if o.PID != 0 && o.NetNS == "" || o.NetNS != "" && o.UserNS == "" && !o.NetNSOnly {
			t.Fatalf("namespaces %+v", o)
		}
	})
}

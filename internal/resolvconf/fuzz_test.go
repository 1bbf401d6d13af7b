package resolvconf

import (
	"net/netip"
	"reflect"
	"testing"
)

// FuzzParse: no resolv.conf makes Parse panic; what it reads renders
// with Bytes into a file that parses to the same, and a container file
// built from it in a private namespace has a nameserver and none that is
// loopback or link-local.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		// systemd-resolved's stub file.
		"# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).\n# Do not edit.\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n",
		// systemd-resolved's upstream file.
		"# This is /run/systemd/resolve/resolv.conf managed by man:systemd-resolved(8).\nnameserver 192.168.1.1\nnameserver fe80::1%enp3s0\nnameserver 2001:db8::53\nsearch lan example.com\n",
		// What berth writes for a container on a DNS-enabled network.
		"search dns.podman\nnameserver 10.89.0.1\nnameserver 8.8.8.8\noptions ndots:5 timeout:2\n",
		"domain corp.example ; old style\nnameserver ::ffff:10.0.0.1\nnameserver bogus\noptions rotate\noptions attempts:3\n",
		"nameserver\t1.1.1.1#cloudflare\n\n   \nsearch a b c d e f\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file := Parse(data)
		again := Parse(file.Bytes())
		if !reflect.DeepEqual(norm(file), norm(again)) {
			t.Fatalf("not stable:\n%+v\n%+v\n%q", file, again, file.Bytes())
		}
		for _, v6 := range []bool{false, true} {
			out := Build(Params{Host: file, PrivateNetNS: true, IPv6: v6})
			if len(out.Nameservers) == 0 {
				t.Fatalf("no nameserver built from %+v", file)
			}
			for _, n := range out.Nameservers {
				if n.IsLoopback() || n.IsLinkLocalUnicast() || (!v6 && n.Is6()) {
					t.Fatalf("nameserver %s unreachable from the container (ipv6 %v)", n, v6)
				}
			}
		}
		gw := netip.MustParseAddr("10.89.0.1")
		if out := Build(Params{Host: file, PrivateNetNS: true, NetworkServers: []netip.Addr{gw}}); out.Nameservers[0] != gw {
			t.Fatalf("network's server not first: %v", out.Nameservers)
		}
	})
}

// norm makes empty and missing lists equal.
func norm(f File) File {
	if len(f.Nameservers) == 0 {
		f.Nameservers = nil
	}
	if len(f.Search) == 0 {
		f.Search = nil
	}
	if len(f.Options) == 0 {
		f.Options = nil
	}
	return f
}

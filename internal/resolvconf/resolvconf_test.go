package resolvconf

import (
	"net/netip"
	"testing"
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestBuild(t *testing.T) {
	host := Parse([]byte("# generated\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver fe80::1\nnameserver 2001:db8::53\nsearch corp.example\noptions edns0 trust-ad\n"))
	cases := []struct {
		name string
		p    Params
		want string
	}{
		{"dns network (aardvark first, then host servers without loopback)",
			Params{Host: host, PrivateNetNS: true, NetworkServers: addrs("192.168.55.3"), NetworkSearch: []string{"dns.podman"}},
			"search dns.podman corp.example\nnameserver 192.168.55.3\nnameserver 10.255.255.53\noptions edns0 trust-ad\n"},
		{"no dns network, IPv6 container keeps v6 servers",
			Params{Host: host, PrivateNetNS: true, IPv6: true},
			"search corp.example\nnameserver 10.255.255.53\nnameserver 2001:db8::53\noptions edns0 trust-ad\n"},
		{"user flags replace",
			Params{Host: host, PrivateNetNS: true, Servers: addrs("192.168.99.1"), Search: []string{"example.test"}, Options: []string{"ndots:2"}, NetworkServers: addrs("10.89.0.1")},
			"search example.test\nnameserver 192.168.99.1\noptions ndots:2\n"},
		{"only loopback on the host: Google",
			Params{Host: Parse([]byte("nameserver 127.0.0.1\n")), PrivateNetNS: true},
			"nameserver 8.8.8.8\nnameserver 8.8.4.4\n"},
		{"host network keeps loopback",
			Params{Host: Parse([]byte("nameserver 127.0.0.1\n"))},
			"nameserver 127.0.0.1\n"},
		{"search . removes the search line",
			Params{Host: host, PrivateNetNS: true, Search: []string{"."}},
			"nameserver 10.255.255.53\noptions edns0 trust-ad\n"},
	}
	for _, tc := range cases {
		if got := string(Build(tc.p).Bytes()); got != tc.want {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
}

package runopts

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthnet/berth/internal/network"
)

func TestParsePublish(t *testing.T) {
	pm := func(ip string, h, c, r uint16, proto string) network.PortMapping {
		return network.PortMapping{HostIP: ip, HostPort: h, ContainerPort: c, Range: r, Protocol: proto}
	}
	ok := []struct {
		in   string
		want []network.PortMapping
	}{
		{"8080:80", []network.PortMapping{pm("", 8080, 80, 1, "tcp")}},
		{"80", []network.PortMapping{pm("", 0, 80, 1, "tcp")}},
		{"127.0.0.1::80", []network.PortMapping{pm("127.0.0.1", 0, 80, 1, "tcp")}},
		{"127.0.0.1:8080:80/udp", []network.PortMapping{pm("127.0.0.1", 8080, 80, 1, "udp")}},
		{"[::1]:8091:80", []network.PortMapping{pm("::1", 8091, 80, 1, "tcp")}},
		{"8080-8081:80-81", []network.PortMapping{pm("", 8080, 80, 2, "tcp")}},
		{"53:53/tcp,udp", []network.PortMapping{pm("", 53, 53, 1, "tcp"), pm("", 53, 53, 1, "udp")}},
		{"9000:9000/SCTP", []network.PortMapping{pm("", 9000, 9000, 1, "sctp")}},
	}
	for _, tc := range ok {
		got, err := ParsePublish(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%s: %s", tc.in, d)
		}
	}
	bad := map[string]string{
		"8085-8087:80-81": "host and container port ranges have different lengths: 3 vs 2",
		"70000:80":        "parsing host port: port numbers must be between 1 and 65535 (inclusive), got 70000",
		"80/foo":          `unrecognized protocol "foo"`,
		"1.2.3.4.5:80:80": `cannot parse "1.2.3.4.5" as an IP address`,
		"::1:80:80":       "format is",
		"[::1]:80":        "[IPv6]:hostPort:containerPort",
		"abc":             `cannot parse "abc" as a port number`,
		"80/tcp/udp":      "protocol can only be specified once",
		"90-80:90-80":     "end is below the start",
		"":                "a port number is missing",
	}
	for in, want := range bad {
		_, err := ParsePublish(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "--publish") {
			t.Errorf("%q: got %v, want %q", in, err, want)
		}
	}
}

func TestExposeAndPublishAll(t *testing.T) {
	e, err := ParseExpose("80")
	if err != nil || FormatExpose(e) != "80/tcp" {
		t.Fatalf("%v %v", e, err)
	}
	e2, _ := ParseExpose("90-91/udp")
	if FormatExpose(e2) != "90-91/udp" {
		t.Errorf("%v", e2)
	}
	if _, err := ParseExpose("80/icmp"); err == nil || !strings.Contains(err.Error(), "--expose") {
		t.Errorf("bad proto: %v", err)
	}
	got := PublishAll([]network.PortMapping{e, e2}, []network.PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}})
	want := []network.PortMapping{{ContainerPort: 90, Range: 1, Protocol: "udp"}, {ContainerPort: 91, Range: 1, Protocol: "udp"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Error(d)
	}
}

func TestParseNetworks(t *testing.T) {
	m, err := ParseNetworks(nil)
	if err != nil || m.Kind != ModeBridge || len(m.Networks) != 1 || m.Networks[0].Name != "" {
		t.Errorf("default: %+v %v", m, err)
	}
	m, err = ParseNetworks([]string{"n1:ip=198.19.1.5,mac=92:d0:c6:0a:29:33,alias=web,alias=www,interface_name=lan0", "n2"})
	if err != nil {
		t.Fatal(err)
	}
	want := []NetworkRequest{{Name: "n1", IPs: []netip.Addr{netip.MustParseAddr("198.19.1.5")}, MAC: "92:d0:c6:0a:29:33", Aliases: []string{"web", "www"}, Interface: "lan0"}, {Name: "n2"}}
	if d := cmp.Diff(want, m.Networks, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Error(d)
	}
	m, _ = ParseNetworks([]string{"a,b"})
	if len(m.Networks) != 2 {
		t.Errorf("legacy list: %+v", m)
	}
	for in, kind := range map[string]string{"none": ModeNone, "host": ModeHost, "container:web": ModeContainer, "ns:/run/netns/x": ModeNS, "bridge": ModeBridge, "private": ModeBridge, "slirp4netns": ModeSlirp, "slirp4netns:allow_host_loopback=true": ModeSlirp, "pasta": ModePasta, "pasta:-t,8080,--map-gw": ModePasta} {
		m, err := ParseNetworks([]string{in})
		if err != nil || m.Kind != kind {
			t.Errorf("%s: %+v %v", in, m, err)
		}
	}
	bad := map[string][]string{
		"cannot be combined":       {"host", "n1"},
		"unknown option \"foo\"":   {"n1:foo=1"},
		"ip=1.2.3: not an IPv4":    {"n1:ip=1.2.3"},
		"absolute namespace path":  {"ns:x"},
		"berth sets it itself":     {"pasta:--pid,/tmp/x"},
		"empty pasta option":       {"pasta:-t,,8080"},
		"unknown option \"bogus\"": {"slirp4netns:bogus=1"},
		"mtu=\"9\": want a number": {"slirp4netns:mtu=9"},
		"cidr=10.0.0.0/30":         {"slirp4netns:cidr=10.0.0.0/30"},
		"port_handler=\"x\"":       {"slirp4netns:port_handler=x"},
		"network given twice":      {"n1", "n1"},
		"not a valid interface":    {"n1:interface_name=averyveryverylongname"},
		"want key=value":           {"n1:ip"},
	}
	for want, in := range bad {
		_, err := ParseNetworks(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--network") {
			t.Errorf("%v: got %v, want %q", in, err, want)
		}
	}
}

// TestParsePastaOptions: Podman's comma-separated form becomes separate
// arguments; berth's own --pid and --netns are refused in every form.
func TestParsePastaOptions(t *testing.T) {
	got, err := ParsePastaOptions("-t,8080,--map-gw,--dns-forward,10.0.2.3,--netns-only")
	want := []string{"-t", "8080", "--map-gw", "--dns-forward", "10.0.2.3", "--netns-only"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("got %q %v, want %q", got, err, want)
	}
	if got, err := ParsePastaOptions(""); err != nil || got != nil {
		t.Errorf("empty: %q %v", got, err)
	}
	for _, bad := range []string{"--pid,x", "--pid=x", "-Px", "-P", "--netns,/x", "--netns=/x", "-t,", ","} {
		if _, err := ParsePastaOptions(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	m, err := ParseNetworks([]string{"pasta:-t,8080"})
	if err != nil || m.Kind != ModePasta || m.Target != "-t,8080" || len(m.Networks) != 0 {
		t.Errorf("pasta:-t,8080: %+v %v", m, err)
	}
	if _, err := ParseNetworks([]string{"pasta", "n1"}); err == nil {
		t.Error("pasta combined with a network: no error")
	}
}

func TestSingleApply(t *testing.T) {
	m, _ := ParseNetworks([]string{"a", "b"})
	if err := (Single{IP: "198.19.0.5"}).Apply(&m); err == nil || err.Error() != "--ip can only be set for a single network: invalid argument" {
		t.Errorf("two networks: %v", err)
	}
	m, _ = ParseNetworks(nil)
	if err := (Single{IP: "198.19.0.5", IP6: "fd00::5", MAC: "92:d0:c6:0a:29:33", Aliases: []string{"x"}}).Apply(&m); err != nil {
		t.Fatal(err)
	}
	if len(m.Networks[0].IPs) != 2 || m.Networks[0].MAC == "" || m.Networks[0].Aliases[0] != "x" {
		t.Errorf("%+v", m)
	}
	m, _ = ParseNetworks(nil)
	if err := (Single{IP6: "1.2.3.4"}).Apply(&m); err == nil || !strings.Contains(err.Error(), "--ip6") {
		t.Errorf("%v", err)
	}
	m, _ = ParseNetworks([]string{"host"})
	if err := (Single{MAC: "92:d0:c6:0a:29:33"}).Apply(&m); err == nil || !strings.Contains(err.Error(), "--mac-address cannot be used with --network host") {
		t.Errorf("%v", err)
	}
}

func TestParseAddHostAndDNS(t *testing.T) {
	h, err := ParseAddHost("db;db2:198.19.0.9")
	if err != nil || h.IP != "198.19.0.9" || len(h.Names) != 2 {
		t.Errorf("%+v %v", h, err)
	}
	h, err = ParseAddHost("v6:fd00::1")
	if err != nil || h.IP != "fd00::1" {
		t.Errorf("%+v %v", h, err)
	}
	if h, err := ParseAddHost("gw:host-gateway"); err != nil || h.IP != HostGateway {
		t.Errorf("%+v %v", h, err)
	}
	for _, in := range []string{"bad", "x:1.2.3", ":1.2.3.4"} {
		if _, err := ParseAddHost(in); err == nil || !strings.Contains(err.Error(), "--add-host") {
			t.Errorf("%s: %v", in, err)
		}
	}
	d, err := ParseDNS([]string{"198.19.0.1"}, []string{"example.test"}, []string{"ndots:2"}, ModeBridge)
	if err != nil || len(d.Servers) != 1 {
		t.Errorf("%+v %v", d, err)
	}
	if _, err := ParseDNS([]string{"x"}, nil, nil, ModeBridge); err == nil || !strings.Contains(err.Error(), "--dns \"x\"") {
		t.Errorf("%v", err)
	}
	if _, err := ParseDNS([]string{"1.1.1.1"}, nil, nil, ModeNone); err == nil || err.Error() != "conflicting options: dns and the network mode: none" {
		t.Errorf("%v", err)
	}
	if d, _ := ParseDNS([]string{"none"}, nil, nil, ModeBridge); !d.None {
		t.Error("--dns none")
	}
}

func TestParseSlirpOptions(t *testing.T) {
	o, err := ParseSlirpOptions("allow_host_loopback=true,enable_ipv6=true,cidr=10.41.0.0/24,mtu=1500,port_handler=rootlessport,outbound_addr=eth0")
	if err != nil {
		t.Fatal(err)
	}
	if !o.AllowHostLoopback || !o.EnableIPv6 || o.CIDR.String() != "10.41.0.0/24" || o.MTU != 1500 || o.OutboundAddr != "eth0" {
		t.Errorf("%+v", o)
	}
	if o, err := ParseSlirpOptions(""); err != nil || o != (SlirpOptions{}) {
		t.Errorf("empty: %+v %v", o, err)
	}
	if _, err := ParseSlirpOptions("enable_ipv6=yes"); err == nil || !strings.Contains(err.Error(), "want true or false") {
		t.Errorf("enable_ipv6=yes: %v", err)
	}
}

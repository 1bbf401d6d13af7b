package pasta

import (
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// podman6 is what Podman 6 runs for `podman run -p 8080:80 -p
// 127.0.0.1:8443:443/tcp -p [::1]:5353:53/udp`.
var podman6 = []string{"--config-net",
	"-t", "8080-8080:80-80", "-t", "127.0.0.1/8443-8443:443-443", "-u", "::1/5353-5353:53-53",
	"--dns-forward", "169.254.1.1", "-T", "none", "-U", "none", "--no-map-gw", "--quiet",
	"--map-guest-addr", "169.254.1.2", "--pid", "/run/user/1000/containers/pasta.pid",
	"--netns", "/run/user/1000/netns/netns-1234"}

// podman6NoPorts is the line without published ports.
var podman6NoPorts = []string{"--config-net", "--dns-forward", "169.254.1.1",
	"-t", "none", "-u", "none", "-T", "none", "-U", "none", "--no-map-gw", "--quiet",
	"--map-guest-addr", "169.254.1.2", "--pid", "/tmp/p.pid", "--netns", "/run/user/1000/netns/netns-1"}

func TestParsePodman(t *testing.T) {
	o, err := Parse(podman6)
	if err != nil {
		t.Fatal(err)
	}
	want := &Options{
		ConfigNet: true, NetNS: "/run/user/1000/netns/netns-1234", NetNSOnly: true,
		PIDFile: "/run/user/1000/containers/pasta.pid", Quiet: true, NoMapGW: true,
		TCP:   PortSpec{PortSpecific, true, []Forward{fw(8080, 8080, 80), bound("127.0.0.1", "", 8443, 8443, 443)}},
		UDP:   PortSpec{PortSpecific, true, []Forward{bound("::1", "", 5353, 5353, 53)}},
		TCPNS: PortSpec{Mode: PortNone, Given: true}, UDPNS: PortSpec{Mode: PortNone, Given: true},
		DNSForward: addrs("169.254.1.1"), MapGuestAddr: addrs("169.254.1.2"),
		Netmask: -1, MTU: -1, FD: -1,
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("got  %+v\nwant %+v", o, want)
	}
	o, err = Parse(podman6NoPorts)
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range []PortSpec{o.TCP, o.UDP, o.TCPNS, o.UDPNS} {
		if ps.Mode != PortNone || !ps.Given || ps.Forwards != nil {
			t.Errorf("port spec %+v, want none", ps)
		}
	}
	// User options from containers.conf come first; --map-gw survives if
	// Podman did not strip it.
	o, err = Parse(append([]string{"--config-net", "--map-gw", "-a", "10.0.2.100", "-n", "24", "-g", "10.0.2.2",
		"-m", "1500", "--ipv4-only", "-D", "10.0.2.3", "-S", "example.com"}, podman6NoPorts[1:]...))
	if err != nil {
		t.Fatal(err)
	}
	if !o.MapGW || !o.NoMapGW || !reflect.DeepEqual(o.Addrs, addrs("10.0.2.100")) || o.Netmask != 24 ||
		!reflect.DeepEqual(o.Gateways, addrs("10.0.2.2")) || o.MTU != 1500 || !o.IPv4Only ||
		!reflect.DeepEqual(o.DNS, addrs("10.0.2.3")) || !reflect.DeepEqual(o.Search, []string{"example.com"}) {
		t.Errorf("user options: %+v", o)
	}
}

// TestOptionForms: every way getopt_long takes an option.
func TestOptionForms(t *testing.T) {
	for _, args := range [][]string{
		{"--mtu", "1500"}, {"--mtu=1500"}, {"-m1500"}, {"-m", "1500"}, {"--mt", "1500"}, {"--mtu=0x5dc"},
		{"-dm", "1500"}, {"-dm1500"},
	} {
		o, err := Parse(args)
		if err != nil || o.MTU != 1500 {
			t.Errorf("%q: MTU %d, %v", args, o.MTU, err)
		}
	}
	o, err := Parse([]string{"-46", "-qd", "-tnone", "--ipv4", "--netns=foo"})
	if err != nil || !o.IPv4Only || o.IPv6Only || !o.Debug || o.Quiet || o.TCP.Mode != PortNone || !o.TCP.Given ||
		o.NetNS != "/run/netns/foo" || !o.NetNSOnly {
		t.Errorf("bundled: %+v %v", o, err)
	}
	// "+" ordering: the first non-option and everything after it is the
	// command; "--" ends the options.
	o, err = Parse([]string{"-f", "ip", "-d", "link"})
	if err != nil || !o.Foreground || o.Debug || !reflect.DeepEqual(o.Target, []string{"ip", "-d", "link"}) {
		t.Errorf("command: %+v %v", o, err)
	}
	o, err = Parse([]string{"-q", "--", "-d"})
	if err != nil || o.Debug || !reflect.DeepEqual(o.Target, []string{"-d"}) {
		t.Errorf("--: %+v %v", o, err)
	}
	// An option's argument may look like an option.
	o, err = Parse([]string{"-l", "-d", "--pid", "--netns"})
	if err != nil || o.LogFile != "-d" || o.PIDFile != "--netns" || o.Debug {
		t.Errorf("dash arguments: %+v %v", o, err)
	}
	// A PID target.
	o, err = Parse([]string{"--config-net", "1234"})
	if err != nil || o.PID != 1234 || o.NetNS != "/proc/1234/ns/net" || o.UserNS != "/proc/1234/ns/user" || o.NetNSOnly {
		t.Errorf("pid: %+v %v", o, err)
	}
	o, err = Parse([]string{"--netns-only", "1234"})
	if err != nil || o.PID != 1234 || o.UserNS != "" || !o.NetNSOnly {
		t.Errorf("pid --netns-only: %+v %v", o, err)
	}
	o, err = Parse([]string{"--userns", "/proc/1/ns/user", "--netns", "/x/y"})
	if err != nil || o.UserNS != "/proc/1/ns/user" || o.NetNSOnly || o.NetNS != "/x/y" {
		t.Errorf("userns: %+v %v", o, err)
	}
	// Help and version stop at once, before later errors.
	if o, err := Parse([]string{"-d", "-h", "--bogus"}); err != nil || !o.Help {
		t.Errorf("help: %+v %v", o, err)
	}
	if o, err := Parse([]string{"--version", "-t", "99999"}); err != nil || !o.Version {
		t.Errorf("version: %+v %v", o, err)
	}
}

func TestEveryOption(t *testing.T) {
	args := []string{"-d", "--trace", "-f", "-e", "-l", "/l", "--log-size", "1048576", "--runas", "1000:1000",
		"-I", "tap0", "-F", "5", "-p", "/p.pcap", "-P", "/pid", "-m", "0", "-a", "10.0.2.100", "-a", "fd00::100",
		"-n", "255.255.255.0", "-M", "02:00:00:00:00:01", "-g", "10.0.2.2", "-g", "fd00::2", "-i", "eth0",
		"-o", "192.0.2.1", "-o", "2001:db8::1", "--outbound-if4", "eth0", "--outbound-if6", "eth1",
		"-D", "1.1.1.1", "-D", "2606:4700::1111", "-S", "a.example", "-S", "b.example", "--dhcp-dns", "--dhcp-search",
		"--dns-forward", "169.254.1.1", "--dns-forward", "fd00::53", "--dns-host", "192.0.2.53",
		"--no-tcp", "--no-udp", "--no-icmp", "--no-dhcp", "--no-ndp", "--no-dhcpv6", "--no-ra", "--freebind",
		"--map-host-loopback", "169.254.1.3", "--map-guest-addr", "169.254.1.2", "-H", "box", "--fqdn", "box.example",
		"-6", "-t", "none", "-u", "none", "-T", "none", "-U", "none", "--userns", "/u", "--netns", "/n",
		"--no-netns-quit", "--config-net", "--no-copy-routes", "--no-copy-addrs", "--ns-mac-addr", "02:00:00:00:00:02",
		"--no-splice", "--repair-path", "none", "-c", "/ctl", "--chroot-fallback", "--print-capabilities", "--stats", "1"}
	o, err := Parse(args)
	if err != nil {
		t.Fatal(err)
	}
	want := &Options{
		ConfigNet: true, NetNS: "/n", UserNS: "/u", PIDFile: "/pid",
		Debug: true, Trace: true, Foreground: true, Stderr: true, LogFile: "/l", LogSize: 1048576,
		TCP: PortSpec{Given: true}, UDP: PortSpec{Given: true}, TCPNS: PortSpec{Given: true}, UDPNS: PortSpec{Given: true},
		DNSForward: addrs("169.254.1.1", "fd00::53"), MapGuestAddr: addrs("169.254.1.2"),
		MapHostLoopback: addrs("169.254.1.3"), DNSHost: addrs("192.0.2.53"), IPv6Only: true,
		Addrs: addrs("10.0.2.100", "fd00::100"), Netmask: 24, Gateways: addrs("10.0.2.2", "fd00::2"),
		NSIfname: "tap0", Iface: "eth0", OutboundIf4: "eth0", OutboundIf6: "eth1",
		Outbound: addrs("192.0.2.1", "2001:db8::1"), MTU: 0,
		MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, NSMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		DNS: addrs("1.1.1.1", "2606:4700::1111"), Search: []string{"a.example", "b.example"}, DHCPDNS: true, DHCPSrch: true,
		NoTCP: true, NoUDP: true, NoICMP: true, NoDHCP: true, NoNDP: true, NoDHCPv6: true, NoRA: true,
		NoCopyRoutes: true, NoCopyAddrs: true, NoNetNSQuit: true, NoSplice: true, Freebind: true,
		RunAs: "1000:1000", PcapFile: "/p.pcap", Hostname: "box", FQDN: "box.example", ConfPath: "/ctl", RepairPath: "none", FD: 5,
		Ignored: []string{"--stderr", "--log-size", "--runas", "--fd", "--pcap",
			"--dns-host", "--freebind", "--hostname", "--fqdn", "--no-splice",
			"--repair-path", "--conf-path", "--chroot-fallback", "--print-capabilities", "--stats"},
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("got  %+v\nwant %+v", o, want)
	}
}

// TestLastWins: 2024+ pasta lets options repeat; the last value (per
// address family) wins.
func TestLastWins(t *testing.T) {
	o, err := Parse([]string{"-a", "10.0.0.1", "-a", "10.0.0.2", "-a", "fd00::1", "-4", "-6", "-d", "-q", "-q",
		"-D", "1.1.1.1", "-D", "none", "-S", "none", "-S", "x.example", "--netns", "/a", "--netns", "b",
		"--map-host-loopback", "none"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.Addrs, addrs("10.0.0.2", "fd00::1")) || o.IPv4Only || !o.IPv6Only || !o.Quiet || o.Debug ||
		!o.NoDNS || o.DNS != nil || o.NoSearch || !reflect.DeepEqual(o.Search, []string{"x.example"}) ||
		o.NetNS != "/run/netns/b" || !o.NoMapGW || o.MapHostLoopback != nil {
		t.Errorf("%+v", o)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		args      string
		want      string
		showUsage bool
	}{
		// getopt's own messages, followed by the usage text.
		{"--bogus --netns /x", "pasta: unrecognized option '--bogus'", true},
		{"--bogus=1", "pasta: unrecognized option '--bogus=1'", true},
		{"-x --netns /x", "pasta: invalid option -- 'x'", true},
		{"-dx", "pasta: invalid option -- 'x'", true},
		{"--netns", "pasta: option '--netns' requires an argument", true},
		{"-t", "pasta: option requires an argument -- 't'", true},
		{"--debug=1", "pasta: option '--debug' doesn't allow an argument", true},
		{"--tcp --netns /x", "pasta: option '--tcp' is ambiguous; possibilities: '--tcp-ports' '--tcp-ns'", true},
		// Messages of pasta itself (texts checked against pasta 0.0~git20230309).
		{"-t 99999 --netns /x", "Invalid port specifier 99999", false},
		{"--tcp-ports=99999", "Invalid port specifier 99999", false},
		{"-t none -t 80", "Specific ports cannot be specified together with all/none/auto", false},
		{"-t 80 -t none", "Port forwarding mode 'none' conflicts with previous mode", false},
		{"-u 80 -u none", "Port forwarding mode 'none' conflicts with previous mode", false},
		{"-t 80 -t 80", "Overlapping port specifier 80", false},
		{"-t 80 -t 127.0.0.1/80", "Overlapping port specifier 127.0.0.1/80", false},
		{"-T 127.0.0.1/80", "Invalid port specifier 127.0.0.1/80", false},
		{"-a 127.0.0.1", "Invalid address: 127.0.0.1", false},
		{"-a foo", "Invalid address: foo", false},
		{"-a ::ffff:10.0.0.1", "Invalid address: ::ffff:10.0.0.1", false},
		{"-n 33", "Invalid netmask: 33", false},
		{"-n 255.0.255.0", "Invalid netmask: 255.0.255.0", false},
		{"-n 255.255.255.0x", "Invalid netmask: 255.255.255.0x", false},
		{"-g 127.0.0.1", "Invalid gateway address: 127.0.0.1", false},
		{"-D foo", "Cannot use DNS address foo", false},
		{"--dns-forward 127.0.0.1", "Invalid DNS forwarding address: 127.0.0.1", false},
		{"--log-size 1", "Invalid --log-size: 1", false},
		{"-I aaaaaaaaaaaaaaaaaaaa", "Invalid interface name: aaaaaaaaaaaaaaaaaaaa", false},
		{"-m 67", "Invalid MTU: 67", false},
		{"-m 12x", "Invalid MTU: 12x", false},
		{"-m 65536", "Invalid MTU: 65536", false},
		{"-m abc", "Invalid MTU: abc", false},
		{"-o 0.0.0.0", "Invalid or redundant outbound address: 0.0.0.0", false},
		{"--netns /x 1234", "Both --netns and PID or command given", false},
		{"--netns /x -- echo hi", "Both --netns and PID or command given", false},
		// Messages of 2024-2026 pasta (from its source).
		{"-M 02:00:00:00:00", "Invalid MAC address: 02:00:00:00:00", false},
		{"--ns-mac-addr zz:00:00:00:00:00", "Invalid MAC address: zz:00:00:00:00:00", false},
		{"--map-guest-addr 127.0.0.1", "Invalid address to remap to host: 127.0.0.1", false},
		{"--map-host-loopback ::", "Invalid address to remap to host: ::", false},
		{"--no-copy-routes", "--no-copy-routes needs --config-net", false},
		{"--no-copy-addrs", "--no-copy-addrs needs --config-net", false},
		{"--no-splice --host-lo-to-ns-lo", "--host-lo-to-ns-lo is incompatible with --no-splice", false},
		{"--no-tcp -t 80", "TCP port forwarding requested but TCP is disabled", false},
		{"-u 53 --no-udp", "UDP port forwarding requested but UDP is disabled", false},
		{"--one-off", "--one-off is for passt mode only", false},
		{"-s /sock", "-s is for passt / vhost-user mode only", false},
		{"--repair-path /r", "--repair-path is for vhost-user mode only", false},
		{"--stats 1", "Can't display statistics if not running in foreground", false},
		{"-F 2", "Invalid --fd: 2", false},
		{"99999999999", "Invalid PID 99999999999", false},
	}
	for _, c := range cases {
		_, err := Parse(strings.Fields(c.args))
		ue, ok := err.(*UsageError)
		if !ok || ue.Msg != c.want || ue.ShowUsage != c.showUsage {
			t.Errorf("%s: error %#v, want %q (usage %v)", c.args, err, c.want, c.showUsage)
		}
	}
}

// TestErrorOrder: like pasta, option errors come first, then -t/-u, then
// the target, then -T/-U.
func TestErrorOrder(t *testing.T) {
	for args, want := range map[string]string{
		"-T 0 -t 0 -m 1":       "Invalid MTU: 1",
		"-T 0 -t 0":            "Invalid port specifier 0",
		"-T 0 --netns /x 1":    "Both --netns and PID or command given",
		"-T 0 --netns /x":      "Invalid port specifier 0",
		"-t 0 --bogus":         "pasta: unrecognized option '--bogus'",
		"--no-copy-addrs -t 0": "--no-copy-addrs needs --config-net",
	} {
		if _, err := Parse(strings.Fields(args)); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
}

func TestUsageAndVersion(t *testing.T) {
	if !strings.HasPrefix(Usage, "Usage: pasta [OPTION]...") || !strings.Contains(Usage, "berth") {
		t.Error("usage text")
	}
	// Every long option pasta takes is in the help, except the passt-only ones.
	for _, opt := range options {
		switch opt.name {
		case "socket", "socket-path", "one-off", "no-dhcp-dns", "no-dhcp-search", "vhost-user",
			"print-capabilities", "repair-path", "migrate-exit", "migrate-no-linger", "stats", "conf-path",
			"chroot-fallback":
			continue
		}
		if !strings.Contains(Usage, "--"+opt.name+" ") && !strings.Contains(Usage, "--"+opt.name+"\t") {
			t.Errorf("--%s missing from usage", opt.name)
		}
	}
	if v := VersionText(); !strings.HasPrefix(v, "pasta "+PastaVersion+" (berth ") || !strings.HasSuffix(v, ")\n") {
		t.Errorf("version %q", v)
	}
}

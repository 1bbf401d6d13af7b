package doctor

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

var (
	ap = netip.MustParseAddrPort
	pp = netip.MustParsePrefix
	ip = netip.MustParseAddr
)

// healthy is a host as berth leaves it: network web (bridge br0,
// 198.19.1.0/24, DNS) with container c1 publishing 8080/tcp and 8053/udp,
// its monitor (pid 500) holding them.
func healthy() Input {
	return Input{
		Networks: []Network{{Name: "web", ID: "abc", Driver: "bridge", Bridge: "br0", Managed: true, Firewalled: true, DNS: true,
			Subnets: []Subnet{{Prefix: pp("198.19.1.0/24"), Gateway: ip("198.19.1.1")}}}},
		Attachments: []Attachment{{ContainerID: "c1id", ContainerName: "c1", Network: "web", Interface: "eth0",
			Addresses: []netip.Addr{ip("198.19.1.2")}, Holders: []int{500},
			Ports: []Port{{Proto: "tcp", HostPort: 8080, Target: ap("198.19.1.2:80")}, {Proto: "udp", HostPort: 8053, Target: ap("198.19.1.2:53")}}}},
		Host: Snapshot{
			Sysctls: map[string]string{
				"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "0", "net.ipv4.conf.all.rp_filter": "0",
				"net.ipv4.conf.br0.rp_filter": "2", "net.bridge.bridge-nf-call-iptables": "1",
			},
			Links: []Link{{Name: "lo", MTU: 65536, Up: true}, {Name: "eth0", MTU: 1500, Up: true}, {Name: "br0", Kind: "bridge", MTU: 1500, Up: true}},
			Routes: []Route{
				{Dst: pp("0.0.0.0/0"), Dev: "eth0", Gateway: ip("192.0.2.1"), Table: TableMain, Type: "unicast"},
				{Dst: pp("192.0.2.0/24"), Dev: "eth0", Table: TableMain, Type: "unicast"},
				{Dst: pp("198.19.1.0/24"), Dev: "br0", Table: TableMain, Type: "unicast"},
				{Dst: pp("198.19.1.1/32"), Dev: "br0", Table: TableLocal, Type: "local"},
			},
			Rules: []Rule{
				{Priority: 0, Table: TableLocal, Family: 4, SuppressPrefixLen: -1},
				{Priority: MainRulePriority, Table: TableMain, Family: 4, SuppressPrefixLen: -1},
				{Priority: 32767, Table: 253, Family: 4, SuppressPrefixLen: -1},
			},
			Firewall: FirewallState{Driver: "nftables", Checked: true},
			DNS:      DNSState{PID: 700, Port: 53},
			Sockets: []Socket{
				{Proto: "udp", Local: ap("198.19.1.1:53"), Listening: true, Owners: []Process{{PID: 700, Command: "aardvark-dns --config /run/x run"}}},
				{Proto: "tcp", Local: ap("0.0.0.0:8080"), Listening: true, Owners: []Process{{PID: 500, Command: "berth container-monitor c1id"}}},
				{Proto: "udp", Local: ap("0.0.0.0:8053"), Listening: true, Owners: []Process{{PID: 500, Command: "berth container-monitor c1id"}}},
				{Proto: "tcp", Local: ap("0.0.0.0:22"), Listening: true, Owners: []Process{{PID: 1, Command: "sshd"}}},
			},
			Flows: []Flow{
				// A live flow to the container's current address.
				{Proto: "udp", OrigSrc: ap("192.0.2.9:4000"), OrigDst: ap("192.0.2.5:8053"), ReplySrc: ap("198.19.1.2:53"), ReplyDst: ap("192.0.2.9:4000")},
			},
		},
	}
}

func TestHealthy(t *testing.T) {
	if fs := Check(healthy()); len(fs) != 0 {
		t.Fatalf("findings on a healthy host: %+v", fs)
	}
}

// TestFindings breaks one thing at a time: the doctor names it (and only
// it), on the network, with the container when it is about one, and says
// why and how to fix it.
func TestFindings(t *testing.T) {
	for _, tc := range []struct {
		id        string
		container string
		fix       string
		breakIt   func(in *Input)
	}{
		{IPForwardOff, "", "sysctl -w net.ipv4.ip_forward=1", func(in *Input) { in.Host.Sysctls["net.ipv4.ip_forward"] = "0" }},
		{IPv6ForwardingOff, "", "net.ipv6.conf.all.forwarding=1", func(in *Input) {
			in.Networks[0].Subnets = append(in.Networks[0].Subnets, Subnet{Prefix: pp("fd00:19::/64"), Gateway: ip("fd00:19::1")})
			in.Host.Sockets = append(in.Host.Sockets, Socket{Proto: "udp", Local: ap("[fd00:19::1]:53"), Listening: true})
		}},
		{BridgeMissing, "", "berth network reload --all", func(in *Input) { in.Host.Links = in.Host.Links[:2] }},
		{BridgeDown, "", "ip link set br0 up", func(in *Input) { in.Host.Links[2].Up = false }},
		{RPFilterStrict, "", "rp_filter=2", func(in *Input) { in.Host.Sysctls["net.ipv4.conf.br0.rp_filter"] = "1" }},
		{RouteOverlap, "", "ip route del 198.19.1.128/25 dev tun0", func(in *Input) {
			in.Host.Routes = append(in.Host.Routes, Route{Dst: pp("198.19.1.128/25"), Dev: "tun0", Table: TableMain})
		}},
		{RouteOverlap, "", "ip route del 0.0.0.0/0 dev wg0 table 51820", func(in *Input) {
			in.Host.Routes = append(in.Host.Routes, Route{Dst: pp("0.0.0.0/0"), Dev: "wg0", Table: 51820})
			in.Host.Rules = append(in.Host.Rules, Rule{Priority: 100, Table: 51820, Family: 4, Mark: true, Invert: true, SuppressPrefixLen: -1})
		}},
		{MTUMismatch, "", "-o mtu=1420", func(in *Input) { in.Host.Links[1].MTU = 1420 }},
		{FirewallMissing, "", "berth network reload --all", func(in *Input) { in.Host.Firewall.MissingNetworks = []string{"abc"} }},
		{PortForwardMissing, "c1id", "berth network reload c1", func(in *Input) {
			in.Host.Firewall.MissingForwards = []ForwardGap{{ContainerID: "c1id", Network: "web", Detail: "port forward tcp . 8080 -> 198.19.1.2 . 80 is missing from map pf4any"}}
		}},
		{ForeignDrop, "", "iptables -I FORWARD -i br0 -j ACCEPT", func(in *Input) {
			in.Host.Sysctls["net.bridge.bridge-nf-call-iptables"] = "0"
			in.Host.Drops = []Drop{{Chain: "table ip filter chain FORWARD", Family: "ip", Policy: true}}
		}},
		{DNSNotRunning, "", "berth network reload --all", func(in *Input) { in.Host.DNS.PID = 0 }},
		{DNSNotListening, "", "berth network reload --all", func(in *Input) { in.Host.Sockets = in.Host.Sockets[1:] }},
		{PortTaken, "c1id", "-p OTHER:80", func(in *Input) {
			in.Host.Sockets[1].Owners = []Process{{PID: 900, Command: "nginx: master process"}}
		}},
		{StaleConntrack, "c1id", "conntrack -D -p udp --orig-port-dst 8053", func(in *Input) {
			in.Host.Flows = append(in.Host.Flows, Flow{Proto: "udp", OrigSrc: ap("192.0.2.9:4001"), OrigDst: ap("192.0.2.5:8053"), ReplySrc: ap("198.19.1.7:53"), ReplyDst: ap("192.0.2.9:4001")})
		}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			in := healthy()
			tc.breakIt(&in)
			fs := Check(in)
			if len(fs) != 1 {
				t.Fatalf("want one %s finding, got %+v", tc.id, fs)
			}
			f := fs[0]
			if f.ID != tc.id || f.Network != "web" || f.Container != tc.container || f.What == "" || f.Why == "" || !strings.Contains(f.Fix, tc.fix) {
				t.Errorf("got %+v", f)
			}
		})
	}
}

func TestForeignDropWithBridgeNF(t *testing.T) {
	in := healthy()
	in.Host.Drops = []Drop{{Chain: "table ip filter chain FORWARD", Family: "ip", Rule: "rule handle 4 in chain FORWARD"}}
	got := ids(Check(in))
	if !slices.Equal(got, []string{ForeignDrop, BridgeNFDrop}) {
		t.Errorf("got %v", got)
	}
	// An internal network is not routed: only bridged traffic is hit.
	in.Networks[0].Internal = true
	if got := ids(Check(in)); !slices.Equal(got, []string{BridgeNFDrop}) {
		t.Errorf("internal: got %v", got)
	}
	// A drop in an IPv6 table does not concern an IPv4-only network.
	in = healthy()
	in.Host.Drops = []Drop{{Chain: "table ip6 filter chain FORWARD", Family: "ip6", Policy: true}}
	if fs := Check(in); len(fs) != 0 {
		t.Errorf("ip6 drop on IPv4 network: %+v", fs)
	}
}

// A drop policy that berth's accept rules for the network get past is no
// problem: the doctor says so in a remark. Without them, the fix is
// berth's reload, with the manual way for when berth cannot add them.
func TestForeignDropPolicyAndBerthsAcceptRules(t *testing.T) {
	in := healthy()
	in.Host.Drops = []Drop{{Chain: "table ip filter chain FORWARD", Family: "ip", Policy: true, Accepted: map[string]string{"abc": "DOCKER-USER"}}}
	if fs := Check(in); len(fs) != 0 {
		t.Errorf("findings with berth's accept rules in place: %+v", fs)
	}
	rs := Remarks(in)
	if len(rs) != 1 || rs[0].Network != "web" || !strings.Contains(rs[0].Text, "in place in chain DOCKER-USER") || !strings.Contains(rs[0].Text, `"berth net abc"`) {
		t.Errorf("remarks: %+v", rs)
	}

	// Another network's rules are not this one's.
	in.Host.Drops[0].Accepted = map[string]string{"other": "DOCKER-USER"}
	fs := Check(in)
	if len(fs) != 2 || fs[0].ID != ForeignDrop || !strings.Contains(fs[0].Fix, "berth network reload --all") || !strings.Contains(fs[0].Fix, `"berth net abc"`) || !strings.Contains(fs[0].Fix, "iptables -I FORWARD -i br0 -j ACCEPT") {
		t.Errorf("without the network's accept rules: %+v", fs)
	}
	if len(Remarks(in)) != 0 {
		t.Errorf("remarks without the accept rules: %+v", Remarks(in))
	}

	// A driver that keeps no accept rules: the manual fix only.
	in.Host.Firewall.Driver = "firewalld"
	if fs := Check(in); len(fs) == 0 || strings.Contains(fs[0].Fix, "reload") {
		t.Errorf("firewalld driver: %+v", fs)
	}

	// A drop rule after berth's accept rules does not reach the network;
	// one before them does.
	in = healthy()
	in.Host.Drops = []Drop{{Chain: "table inet filter chain forward", Family: "inet", Rule: "rule handle 4 in chain forward", Accepted: map[string]string{"abc": "forward"}}}
	if fs := Check(in); len(fs) != 0 {
		t.Errorf("drop rule after the accept rules: %+v", fs)
	}
	if rs := Remarks(in); len(rs) != 0 {
		t.Errorf("remarks on a drop rule: %+v", rs)
	}
	in.Host.Drops[0].Accepted = nil
	if fs := Check(in); len(fs) == 0 || fs[0].ID != ForeignDrop || !strings.Contains(fs[0].Fix, "Remove that rule") {
		t.Errorf("drop rule before the accept rules: %+v", fs)
	}
}

func TestRouteOverlapNotFalse(t *testing.T) {
	for name, breakIt := range map[string]func(in *Input){
		"shorter route in main": func(in *Input) {
			in.Host.Routes = append(in.Host.Routes, Route{Dst: pp("198.19.0.0/16"), Dev: "tun0", Table: TableMain})
		},
		"other family": func(in *Input) {
			in.Host.Routes = append(in.Host.Routes, Route{Dst: pp("::/0"), Dev: "tun0", Table: TableMain})
		},
		"table without a rule": func(in *Input) {
			in.Host.Routes = append(in.Host.Routes, Route{Dst: pp("0.0.0.0/0"), Dev: "wg0", Table: 51820})
		},
		"rule after main":     func(in *Input) { addVPN(in, 40000, -1, false) },
		"marked traffic only": func(in *Input) { addVPN(in, 100, -1, true) },
		"wg-quick suppress rule": func(in *Input) {
			addVPN(in, 101, -1, false)
			in.Host.Rules = append(in.Host.Rules, Rule{Priority: 100, Table: TableMain, Family: 4, SuppressPrefixLen: 0})
		},
		"suppressed default": func(in *Input) { addVPN(in, 100, 0, false) },
	} {
		in := healthy()
		breakIt(&in)
		if fs := Check(in); len(fs) != 0 {
			t.Errorf("%s: %+v", name, fs)
		}
	}
}

func addVPN(in *Input, prio, suppress int, markOnly bool) {
	in.Host.Routes = append(in.Host.Routes, Route{Dst: pp("0.0.0.0/0"), Dev: "wg0", Table: 51820})
	in.Host.Rules = append(in.Host.Rules, Rule{Priority: prio, Table: 51820, Family: 4, Mark: markOnly, SuppressPrefixLen: suppress})
}

func TestPortHolders(t *testing.T) {
	for name, owner := range map[string]Process{
		"monitor by pid":     {PID: 500, Command: "whatever"},
		"monitor by command": {PID: 501, Command: "/usr/local/libexec/berth/berth --root /x container-monitor c1id"},
		"conmon":             {PID: 502, Command: "/usr/bin/conmon --api-version 1 -c c1id"},
	} {
		in := healthy()
		in.Host.Sockets[1].Owners = []Process{owner}
		if fs := Check(in); len(fs) != 0 {
			t.Errorf("%s: %+v", name, fs)
		}
	}
	// Another container's monitor is not this one's.
	in := healthy()
	in.Host.Sockets[1].Owners = []Process{{PID: 503, Command: "berth container-monitor other"}}
	if got := ids(Check(in)); !slices.Equal(got, []string{PortTaken}) {
		t.Errorf("other monitor: %v", got)
	}
	// A port published on one address is not taken by a socket on another.
	in = healthy()
	in.Attachments[0].Ports[0].HostIP = ip("192.0.2.5")
	in.Host.Sockets[1] = Socket{Proto: "tcp", Local: ap("127.0.0.1:8080"), Listening: true, Owners: []Process{{PID: 900, Command: "x"}}}
	if fs := Check(in); len(fs) != 0 {
		t.Errorf("other address: %+v", fs)
	}
}

func TestReport(t *testing.T) {
	in := healthy()
	in.Host.Sysctls["net.ipv4.ip_forward"] = "0"
	r := NewReport([]string{"web", "db"}, Check(in), []string{"conntrack table: permission denied"})
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"network web: 1 problem\n", "  ERROR ip-forward-off: ", "    fix: sysctl -w net.ipv4.ip_forward=1", "network db: ok\n", "note: conntrack table", "1 problem found.\n"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Healthy || len(back.Findings) != 1 || back.Findings[0].ID != IPForwardOff || back.Findings[0].Network != "web" {
		t.Errorf("json: %v %s", err, js.String())
	}
	var empty bytes.Buffer
	_ = NewReport(nil, nil, nil).WriteJSON(&empty)
	if !strings.Contains(empty.String(), `"findings": []`) || !strings.Contains(empty.String(), `"healthy": true`) {
		t.Errorf("empty json: %s", empty.String())
	}
}

func ids(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

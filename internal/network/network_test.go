package network

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func load(t *testing.T, name string) *Options {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var o Options
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &o
}

func TestCapturedInputsParseAndValidate(t *testing.T) {
	for _, f := range []string{"bridge-dns-input.json", "bridge-ports-input.json", "three-networks-input.json", "macvlan-input.json", "podman-4.3.1-setup-input.json"} {
		o := load(t, f)
		if err := o.Validate(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if len(o.Networks) == 0 || o.ContainerID == "" {
			t.Errorf("%s: parsed nothing: %+v", f, o)
		}
	}
	o := load(t, "bridge-ports-input.json")
	if len(o.PortMappings) != 2 || o.PortMappings[1].HostIP != "127.0.0.1" || o.PortMappings[1].Range != 3 {
		t.Errorf("port mappings: %+v", o.PortMappings)
	}
	if n := o.NetworkInfo["podman1"]; len(n.NetworkDNSServers) != 1 || n.NetworkDNSServers[0] != netip.MustParseAddr("10.123.0.2") {
		t.Errorf("network_dns_servers: %+v", n.NetworkDNSServers)
	}
}

func TestAttachmentsBothShapesKeepOrder(t *testing.T) {
	mapShape := `{"zeta":{"interface_name":"eth0","static_ips":["10.0.0.2"]},"alpha":{"interface_name":"eth1"}}`
	arrShape := `[{"name":"zeta","interface_name":"eth0","static_ips":["10.0.0.2"]},{"name":"alpha","interface_name":"eth1"}]`
	for _, in := range []string{mapShape, arrShape} {
		var a Attachments
		if err := json.Unmarshal([]byte(in), &a); err != nil {
			t.Fatal(err)
		}
		if len(a) != 2 || a[0].Name != "zeta" || a[1].Name != "alpha" || a[0].InterfaceName != "eth0" || a[0].StaticIPs[0].String() != "10.0.0.2" {
			t.Errorf("%s: got %+v", in, a)
		}
		out, _ := json.Marshal(a)
		var back Attachments
		if err := json.Unmarshal(out, &back); err != nil || len(back) != 2 || back[0].Name != "zeta" {
			t.Errorf("round trip %s: %v %+v", out, err, back)
		}
	}
	var a Attachments
	if err := json.Unmarshal([]byte(`"x"`), &a); err == nil {
		t.Error("a string was accepted as networks")
	}
}

func TestUnknownFieldsIgnored(t *testing.T) {
	in := `{"container_id":"abc","container_name":"n","future_field":1,"networks":{"n1":{"interface_name":"eth0","static_ips":["10.1.0.2"],"new":true}},
	"network_info":{"n1":{"name":"n1","id":"1","driver":"bridge","network_interface":"br1","subnets":[{"subnet":"10.1.0.0/24","gateway":"10.1.0.1"}],"ipv6_enabled":false,"internal":false,"dns_enabled":false,"whatever":"x"}}}`
	var o Options
	if err := json.Unmarshal([]byte(in), &o); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestNetworkJSONRoundTrip(t *testing.T) {
	// A network file as Podman 4.3.1 writes it.
	in := `{
     "name": "podman1",
     "id": "53ce4390f2adb1681eb1a90ec8b48c49c015e0a8d336c197637e7f65e365fa9e",
     "driver": "bridge",
     "network_interface": "podman1",
     "created": "2026-11-27T13:45:53.989985833Z",
     "subnets": [{"subnet": "10.89.0.0/24", "gateway": "10.89.0.1"}, {"subnet": "fd00::/64"}],
     "ipv6_enabled": true,
     "internal": false,
     "dns_enabled": true,
     "ipam_options": {"driver": "host-local"}
}`
	var n Network
	if err := json.Unmarshal([]byte(in), &n); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(n)
	if strings.Contains(string(out), `"gateway":""`) || !strings.Contains(string(out), `"subnet":"fd00::/64"}`) {
		t.Errorf("a missing gateway must stay missing: %s", out)
	}
	var back Network
	if err := json.Unmarshal(out, &back); err != nil || back.Subnets[0].Gateway.String() != "10.89.0.1" || back.Created != n.Created {
		t.Errorf("round trip: %v %+v", err, back)
	}
}

func TestValidationErrors(t *testing.T) {
	good := func() *Options {
		return &Options{
			ContainerID: "c1", ContainerName: "web",
			Networks: Attachments{{Name: "n1", PerNetworkOptions: PerNetworkOptions{InterfaceName: "eth0", StaticIPs: []netip.Addr{netip.MustParseAddr("10.1.0.2")}}}},
			NetworkInfo: map[string]Network{"n1": {Name: "n1", ID: "1", Driver: "bridge", NetworkInterface: "br1",
				Subnets: []Subnet{{Subnet: netip.MustParsePrefix("10.1.0.0/24"), Gateway: netip.MustParseAddr("10.1.0.1")}}}},
		}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("valid input rejected: %v", err)
	}
	cases := []struct {
		name  string
		mod   func(o *Options)
		field string
		want  string
	}{
		{"no id", func(o *Options) { o.ContainerID = "" }, "container_id", "must not be empty"},
		{"id with space", func(o *Options) { o.ContainerID = "a b" }, "container_id", "spaces"},
		{"unknown network", func(o *Options) { o.Networks[0].Name = "zz" }, "networks.zz", "no entry in network_info"},
		{"no ifname", func(o *Options) { o.Networks[0].InterfaceName = "" }, "networks.n1.interface_name", "no container interface name given"},
		{"long ifname", func(o *Options) { o.Networks[0].InterfaceName = "averyveryverylongname" }, "networks.n1.interface_name", "not a valid interface name"},
		{"no static ips", func(o *Options) { o.Networks[0].StaticIPs = nil }, "networks.n1.static_ips", "no static ips provided"},
		{"ip outside subnet", func(o *Options) { o.Networks[0].StaticIPs[0] = netip.MustParseAddr("10.9.0.2") }, "networks.n1.static_ips[0]", "not in any subnet"},
		{"ip is network address", func(o *Options) { o.Networks[0].StaticIPs[0] = netip.MustParseAddr("10.1.0.0") }, "networks.n1.static_ips[0]", "10.1.0.0 is the network address of subnet 10.1.0.0/24; want an address from 10.1.0.1 to 10.1.0.254"},
		{"ip is broadcast", func(o *Options) { o.Networks[0].StaticIPs[0] = netip.MustParseAddr("10.1.0.255") }, "networks.n1.static_ips[0]", "10.1.0.255 is the broadcast address of subnet 10.1.0.0/24; want an address from 10.1.0.1 to 10.1.0.254"},
		{"loopback subnet", func(o *Options) {
			n := o.NetworkInfo["n1"]
			n.Subnets = []Subnet{{Subnet: netip.MustParsePrefix("127.0.0.0/8")}}
			o.NetworkInfo["n1"] = n
			o.Networks[0].StaticIPs[0] = netip.MustParseAddr("127.0.0.5")
		}, "network n1.subnets[0].subnet", "overlaps the loopback range 127.0.0.0/8; use a private range"},
		{"host port twice", func(o *Options) {
			o.PortMappings = []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}, {HostPort: 8080, ContainerPort: 81, Protocol: "tcp"}}
		}, "port_mappings[1].host_port", "host port 8080/tcp (all addresses) is published twice: to container port 80 (mapping 0) and to container port 81 (mapping 1)"},
		{"bad mac", func(o *Options) { o.Networks[0].StaticMAC = "zz" }, "networks.n1.static_mac", "not an Ethernet MAC"},
		{"bad driver", func(o *Options) { n := o.NetworkInfo["n1"]; n.Driver = "foo"; o.NetworkInfo["n1"] = n }, "network n1.driver", `unknown network driver "foo"`},
		{"bad isolate", func(o *Options) {
			n := o.NetworkInfo["n1"]
			n.Options = map[string]string{"isolate": "maybe"}
			o.NetworkInfo["n1"] = n
		}, "network n1.options.isolate", "true, false or strict"},
		{"bad mtu", func(o *Options) {
			n := o.NetworkInfo["n1"]
			n.Options = map[string]string{"mtu": "12"}
			o.NetworkInfo["n1"] = n
		}, "network n1.options.mtu", "68-65535"},
		{"bad metric", func(o *Options) {
			n := o.NetworkInfo["n1"]
			n.Options = map[string]string{"metric": "-1"}
			o.NetworkInfo["n1"] = n
		}, "network n1.options.metric", "route metric"},
		{"gateway outside", func(o *Options) {
			n := o.NetworkInfo["n1"]
			n.Subnets[0].Gateway = netip.MustParseAddr("10.2.0.1")
			o.NetworkInfo["n1"] = n
		}, "network n1.subnets[0].gateway", "not in subnet"},
		{"dhcp on bridge", func(o *Options) {
			n := o.NetworkInfo["n1"]
			n.IPAMOptions = map[string]string{"driver": "dhcp"}
			o.NetworkInfo["n1"] = n
		}, "network n1.ipam_options.driver", "macvlan"},
		{"bad protocol", func(o *Options) { o.PortMappings = []PortMapping{{HostPort: 80, ContainerPort: 80, Protocol: "icmp"}} }, "port_mappings[0].protocol", "tcp, udp or sctp"},
		{"range overflow", func(o *Options) {
			o.PortMappings = []PortMapping{{HostPort: 65530, ContainerPort: 80, Range: 10, Protocol: "tcp"}}
		}, "port_mappings[0].range", "past 65535"},
		{"bad host ip", func(o *Options) {
			o.PortMappings = []PortMapping{{HostPort: 80, ContainerPort: 80, Protocol: "tcp", HostIP: "localhost"}}
		}, "port_mappings[0].host_ip", "not an IP address"},
		{"zero host port", func(o *Options) { o.PortMappings = []PortMapping{{ContainerPort: 80, Protocol: "tcp"}} }, "port_mappings[0].host_port", "1-65535"},
		{"dup ifname", func(o *Options) {
			o.Networks = append(o.Networks, NamedNetworkOptions{Name: "n2", PerNetworkOptions: PerNetworkOptions{InterfaceName: "eth0"}})
			o.NetworkInfo["n2"] = Network{Name: "n2", Driver: "bridge", NetworkInterface: "br2", IPAMOptions: map[string]string{"driver": "none"}}
		}, "networks.n2.interface_name", "also used on network n1"},
		{"bad route", func(o *Options) {
			n := o.NetworkInfo["n1"]
			n.Routes = []Route{{Destination: netip.MustParsePrefix("10.5.0.0/16")}}
			o.NetworkInfo["n1"] = n
		}, "network n1.routes[0].gateway", "needs a gateway"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := good()
			tc.mod(o)
			err := o.ValidateSetup()
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want a FieldError", err)
			}
			if fe.Field != tc.field || !strings.Contains(fe.Msg, tc.want) {
				t.Errorf("got %q, want field %q with %q", err, tc.field, tc.want)
			}
		})
	}
}

func TestLastAddrAndParseAddrList(t *testing.T) {
	for in, want := range map[string]string{"198.19.5.0/24": "198.19.5.255", "198.19.5.128/25": "198.19.5.255", "fd00::/64": "fd00::ffff:ffff:ffff:ffff", "10.0.0.7/32": "10.0.0.7"} {
		if got := LastAddr(netip.MustParsePrefix(in)).String(); got != want {
			t.Errorf("LastAddr(%s) = %s, want %s", in, got, want)
		}
	}
	got, err := ParseAddrList([]string{"1.1.1.1, 8.8.8.8", "", "fd00::1"})
	if err != nil || len(got) != 3 || got[2].String() != "fd00::1" {
		t.Errorf("ParseAddrList: %v %v", got, err)
	}
	var bad *AddrError
	if _, err := ParseAddrList([]string{"1.1.1.1,nope"}); !errors.As(err, &bad) || bad.Value != "nope" || !errors.Is(err, ErrInvalid) {
		t.Errorf("bad value: %v", err)
	}
}

func TestGwPriorityMetric(t *testing.T) {
	for _, tc := range []struct {
		base uint32
		p    int
		want uint32
	}{{100, 0, 100}, {100, 10, 90}, {100, -5, 105}, {100, 1000, 1}, {99, -1 << 40, 1 << 31}} {
		if got := GwPriorityMetric(tc.base, tc.p); got != tc.want {
			t.Errorf("GwPriorityMetric(%d, %d) = %d, want %d", tc.base, tc.p, got, tc.want)
		}
	}
}

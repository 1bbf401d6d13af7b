package cni

import (
	"fmt"
	"net/netip"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/go-cmp/cmp"

	"github.com/berthnet/berth/berthnet"
)

func ipamResult(t *testing.T, js string) *current.Result {
	t.Helper()
	r, err := current.NewResult([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestBridgeNetwork(t *testing.T) {
	res := `{"cniVersion":"1.0.0","ips":[{"address":"198.18.1.5/24","gateway":"198.18.1.1"}],"routes":[%s]}`
	cases := []struct {
		name, conf, routes string
		want               berthnet.Network
	}{
		{"defaults: gateway, NAT, default route from IPAM",
			`{"cniVersion":"1.0.0","name":"n","type":"berth-bridge"}`, `{"dst":"0.0.0.0/0"}`,
			berthnet.Network{Name: "n", Interface: DefaultBridge, Subnets: []berthnet.Subnet{{Prefix: netip.MustParsePrefix("198.18.1.0/24"), Gateway: netip.MustParseAddr("198.18.1.1")}}}},
		{"no default route unless asked",
			`{"cniVersion":"1.0.0","name":"n","type":"berth-bridge","bridge":"b0","ipMasq":false}`, `{"dst":"10.0.0.0/8"}`,
			berthnet.Network{Name: "n", Interface: "b0", NoMasquerade: true, NoDefaultRoute: true,
				Subnets: []berthnet.Subnet{{Prefix: netip.MustParsePrefix("198.18.1.0/24"), Gateway: netip.MustParseAddr("198.18.1.1")}},
				Routes:  []berthnet.Route{{Destination: netip.MustParsePrefix("10.0.0.0/8"), Gateway: netip.MustParseAddr("198.18.1.1")}}}},
		{"isDefaultGateway",
			`{"cniVersion":"1.0.0","name":"n","type":"berth-bridge","isGateway":false,"isDefaultGateway":true}`, ``,
			berthnet.Network{Name: "n", Interface: DefaultBridge, Subnets: []berthnet.Subnet{{Prefix: netip.MustParsePrefix("198.18.1.0/24"), Gateway: netip.MustParseAddr("198.18.1.1")}}}},
		{"not a gateway: the IPAM's routes go through its gateway",
			`{"cniVersion":"1.0.0","name":"n","type":"berth-bridge","isGateway":false,"mtu":1400}`, `{"dst":"0.0.0.0/0","gw":"198.18.1.254"}`,
			berthnet.Network{Name: "n", Interface: DefaultBridge, MTU: 1400,
				Subnets: []berthnet.Subnet{{Prefix: netip.MustParsePrefix("198.18.1.0/24")}},
				Routes:  []berthnet.Route{{Destination: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("198.18.1.254")}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf, err := parseBridge([]byte(c.conf))
			if err != nil {
				t.Fatal(err)
			}
			got, err := conf.network(ipamResult(t, fmt.Sprintf(res, c.routes)))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(c.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

func TestParseIPAM(t *testing.T) {
	_, p, err := parseIPAM([]byte(`{"cniVersion":"1.0.0","name":"n","ipam":{"type":"berth-ipam",
		"ranges":[[{"subnet":"198.18.0.0/24","rangeStart":"198.18.0.10","rangeEnd":"198.18.0.20"}],[{"subnet":"fd00:bc::/64","gateway":"fd00:bc::fe"}]]},
		"args":{"cni":{"ips":["198.18.0.15"]}}}`), "IgnoreUnknown=1;IP=fd00:bc::5")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.net.Subnets) != 2 || p.net.Subnets[0].Gateway != netip.MustParseAddr("198.18.0.1") || p.net.Subnets[1].Gateway != netip.MustParseAddr("fd00:bc::fe") {
		t.Errorf("subnets: %+v", p.net.Subnets)
	}
	if lr := p.net.Subnets[0].LeaseRange; lr == nil || lr.StartIP != netip.MustParseAddr("198.18.0.10") || lr.EndIP != netip.MustParseAddr("198.18.0.20") {
		t.Errorf("lease range: %+v", lr)
	}
	if len(p.static) != 2 || p.static[0] != netip.MustParseAddr("198.18.0.15") || p.static[1] != netip.MustParseAddr("fd00:bc::5") {
		t.Errorf("requested addresses: %v", p.static)
	}
	if p.dataDir != DefaultStateDir {
		t.Errorf("dataDir %q", p.dataDir)
	}
}

func TestContainerAddrs(t *testing.T) {
	r := ipamResult(t, `{"cniVersion":"1.0.0",
		"interfaces":[{"name":"br"},{"name":"veth"},{"name":"eth0","sandbox":"/run/netns/x"}],
		"ips":[{"address":"10.1.0.1/24","interface":0},{"address":"198.18.1.5/24","interface":2},{"address":"fd00::5/64","interface":2}]}`)
	v4, v6 := containerAddrs(r, "/run/netns/x")
	if v4 != netip.MustParsePrefix("198.18.1.5/24") || v6 != netip.MustParsePrefix("fd00::5/64") {
		t.Errorf("got %v %v", v4, v6)
	}
}

package network

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"
)

func setupOpts(t *testing.T, net string, ips string) *Options {
	t.Helper()
	in := `{"container_id":"c","container_name":"n","networks":{"a":{"interface_name":"eth0","static_ips":` + ips + `}},"network_info":{"a":` + net + `}}`
	var o Options
	if err := json.Unmarshal([]byte(in), &o); err != nil {
		t.Fatal(err)
	}
	return &o
}

// Subnets of one network that overlap are refused before the static
// addresses are looked at, with a typed reason naming both.
func TestSetupRefusesOverlappingSubnets(t *testing.T) {
	o := setupOpts(t, `{"name":"a","driver":"macvlan","subnets":[{"subnet":"10.1.2.0/23","gateway":"10.1.2.1"},{"subnet":"10.1.3.248/30","gateway":"10.1.3.249"}]}`, `["10.1.3.249"]`)
	err := o.ValidateSetup()
	var ov *SubnetOverlapError
	if !errors.As(err, &ov) || ov.First.String() != "10.1.2.0/23" || ov.Second.String() != "10.1.3.248/30" || ov.Duplicate() || !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v", err)
	}
	o = setupOpts(t, `{"name":"a","driver":"ipvlan","subnets":[{"subnet":"10.88.0.0/16"},{"subnet":"10.88.0.0/16"}]}`, `["10.88.0.5"]`)
	if err := o.ValidateSetup(); !errors.As(err, &ov) || !ov.Duplicate() {
		t.Fatalf("duplicate: %v", err)
	}
	if err := o.Validate(); err != nil {
		t.Errorf("teardown must not refuse what setup refuses: %v", err)
	}
}

// A static address outside every subnet reports how many matched.
func TestUnmatchedStaticIPCounts(t *testing.T) {
	o := setupOpts(t, `{"name":"a","driver":"macvlan","subnets":[{"subnet":"10.88.0.0/16"},{"subnet":"10.89.0.0/16"}]}`, `["10.88.0.5","10.89.0.10","10.90.0.15"]`)
	var um *UnmatchedIPError
	if err := o.ValidateSetup(); !errors.As(err, &um) || um.Want != 3 || um.Matched != 2 || um.IP.String() != "10.90.0.15" {
		t.Fatalf("got %v", err)
	}
}

// Routes: unicast needs a gateway, the other types must have none.
func TestRouteGatewayRules(t *testing.T) {
	for in, want := range map[string]error{
		`{"destination":"10.89.0.0/24"}`:                                                 ErrRouteNeedsGateway,
		`{"destination":"10.89.0.0/24","gateway":"10.0.0.2","route_type":"blackhole"}`:   ErrRouteHasGateway,
		`{"destination":"10.89.0.0/24","gateway":"10.0.0.2","route_type":"unreachable"}`: ErrRouteHasGateway,
		`{"destination":"10.89.0.0/24","route_type":"bogus"}`:                            ErrRouteType,
	} {
		var n Network
		if err := json.Unmarshal([]byte(`{"name":"a","driver":"bridge","network_interface":"b0","routes":[`+in+`]}`), &n); err != nil {
			t.Fatal(err)
		}
		var re *RouteError
		if err := n.Validate(); !errors.As(err, &re) || !errors.Is(err, want) || re.Destination.String() != "10.89.0.0/24" {
			t.Errorf("%s: %v, want %v", in, err, want)
		}
	}
}

// CheckCreate checks in netavark's order: identity, IPAM, options,
// subnets, routes.
func TestCheckCreateOrder(t *testing.T) {
	id := strings.Repeat("0a", 32)
	cases := []struct {
		n    Network
		want any
	}{
		{Network{ID: id}, ErrNameMissing},
		{Network{Name: "bad!", ID: id}, new(*NameError)},
		{Network{Name: "taken", ID: id}, new(*NameTakenError)},
		{Network{Name: "n"}, ErrIDMissing},
		{Network{Name: "n", ID: "zz"}, new(*IDError)},
		{Network{Name: "n", ID: id, IPAMOptions: map[string]string{"driver": "none"}, Subnets: []Subnet{{Subnet: netip.MustParsePrefix("10.0.0.0/24")}}}, ErrIPAMNoneSubnets},
		{Network{Name: "n", ID: id, Options: map[string]string{"mtu": "x"}, Subnets: []Subnet{{Subnet: netip.MustParsePrefix("10.0.0.0/32")}}}, new(*OptionError)},
		{Network{Name: "n", ID: id, Subnets: []Subnet{{Subnet: netip.MustParsePrefix("10.0.0.0/32")}}}, new(*SubnetSizeError)},
		{Network{Name: "n", ID: id, Subnets: []Subnet{{Subnet: netip.MustParsePrefix("10.0.0.0/24"), LeaseRange: &LeaseRange{EndIP: netip.MustParseAddr("10.0.1.1")}}}}, new(*LeaseRangeError)},
		{Network{Name: "n", ID: id, Routes: []Route{{Destination: netip.MustParsePrefix("10.0.0.1/24"), Gateway: netip.MustParseAddr("10.1.0.1")}}}, ErrRouteDestination},
	}
	for i, tc := range cases {
		err := tc.n.CheckCreate(map[string]string{"taken": "x"})
		ok := false
		switch w := tc.want.(type) {
		case error:
			ok = errors.Is(err, w)
		default:
			ok = errors.As(err, w)
		}
		if !ok || !errors.Is(err, ErrInvalid) && !errors.As(err, new(*NameTakenError)) {
			t.Errorf("case %d: %v, want %T %v", i, err, tc.want, tc.want)
		}
	}
	good := Network{Name: "n", ID: id, Subnets: []Subnet{{Subnet: netip.MustParsePrefix("10.0.0.0/24")}}}
	if err := good.CheckCreate(nil); err != nil {
		t.Errorf("good network: %v", err)
	}
}

// A bad address or subnet in a network definition is a typed error that
// names the field.
func TestAddressJSONErrorsAreTyped(t *testing.T) {
	for in, field := range map[string]string{
		`{"subnets":[{"subnet":"10.0.0.0"}]}`:                                     "subnet",
		`{"subnets":[{"subnet":"10.0.0.0/24","gateway":"x"}]}`:                    "gateway",
		`{"subnets":[{"subnet":"10.0.0.0/24","lease_range":{"end_ip":"x"}}]}`:     "lease_range.end_ip",
		`{"routes":[{"destination":"192.168.0.1","gateway":"10.0.0.1"}]}`:         "destination",
		`{"routes":[{"destination":"192.168.0.0/24","gateway":"notanip"}]}`:       "gateway",
		`{"dns_enabled":true,"network_dns_servers":["1.1.1.1","not.an.ip.addr"]}`: "network_dns_servers[1]",
	} {
		var n Network
		var ae *AddrError
		if err := json.Unmarshal([]byte(in), &n); !errors.As(err, &ae) || ae.Field != field {
			t.Errorf("%s: %v, want an *AddrError for %s", in, err, field)
		}
	}
	var n Network
	in := `{"name":"a","subnets":[{"subnet":"10.0.0.0/24","gateway":"10.0.0.1","lease_range":{"start_ip":"10.0.0.5"}}],"routes":[{"destination":"10.1.0.0/16","gateway":"10.0.0.2","metric":5}],"network_dns_servers":["1.1.1.1"]}`
	if err := json.Unmarshal([]byte(in), &n); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(n)
	var back Network
	if err := json.Unmarshal(out, &back); err != nil || back.Subnets[0].LeaseRange.StartIP.String() != "10.0.0.5" || *back.Routes[0].Metric != 5 || back.NetworkDNSServers[0].String() != "1.1.1.1" || back.Name != "a" {
		t.Errorf("round trip: %v %+v", err, back)
	}
}

// The failures the core reports keep the core's messages, and unwrap to
// the kernel's error.
func TestSetupFailureTexts(t *testing.T) {
	exit := errors.New("exit status 1")
	for err, want := range map[error]string{
		&InterfaceExistsError{Name: "eth0", Err: syscall.EEXIST}:                         "interface eth0 already exists in the container namespace",
		&InterfaceExistsError{Name: "eth0", HostName: "podman0", Err: syscall.EEXIST}:    `host interface "podman0" already exists: file exists`,
		&BridgeAddrError{Addr: netip.MustParsePrefix("fd00::1/64"), Err: syscall.EACCES}: "permission denied",
		&DNSStartError{Stderr: "", Err: exit}:                                            "aardvark-dns exited at start without an error message (exit status 1)",
		&DNSStartError{Stderr: "bind: address in use", Err: exit}:                        "aardvark-dns failed to start: bind: address in use (exit status 1)",
	} {
		if err.Error() != want {
			t.Errorf("%q, want %q", err.Error(), want)
		}
	}
	if err := error(&BridgeAddrError{Err: syscall.EACCES}); !errors.Is(err, syscall.EACCES) {
		t.Error("BridgeAddrError does not unwrap to its errno")
	}
}

// A network without a subnets key gets no addresses: its static IPs are
// ignored (netavark's mode=unmanaged tests send them), while an empty
// subnets list still refuses them.
func TestStaticIPsWithoutSubnetsKey(t *testing.T) {
	o := setupOpts(t, `{"name":"a","driver":"bridge","network_interface":"brtest0","options":{"mode":"unmanaged"}}`, `["10.88.0.2"]`)
	if err := o.ValidateSetup(); err != nil {
		t.Errorf("no subnets key: %v", err)
	}
	o = setupOpts(t, `{"name":"a","driver":"bridge","network_interface":"brtest0","subnets":[]}`, `["10.88.0.2"]`)
	if err := o.ValidateSetup(); err == nil {
		t.Error("an empty subnets list accepted a static IP")
	}
}

// outbound_addr4/6 take a unicast address of their own family, on bridge
// networks only.
func TestOutboundAddrOptions(t *testing.T) {
	for _, tc := range []struct {
		net string
		ok  bool
	}{
		{`{"name":"a","driver":"bridge","network_interface":"br0","subnets":[{"subnet":"10.88.0.0/16"}],"options":{"outbound_addr4":"198.18.0.3","outbound_addr6":"fd00::3"}}`, true},
		{`{"name":"a","driver":"bridge","network_interface":"br0","subnets":[{"subnet":"10.88.0.0/16"}],"options":{"outbound_addr4":"fd00::3"}}`, false},
		{`{"name":"a","driver":"bridge","network_interface":"br0","subnets":[{"subnet":"10.88.0.0/16"}],"options":{"outbound_addr6":"198.18.0.3"}}`, false},
		{`{"name":"a","driver":"bridge","network_interface":"br0","subnets":[{"subnet":"10.88.0.0/16"}],"options":{"outbound_addr4":"224.0.0.1"}}`, false},
		{`{"name":"a","driver":"bridge","network_interface":"br0","subnets":[{"subnet":"10.88.0.0/16"}],"options":{"outbound_addr4":"nope"}}`, false},
		{`{"name":"a","driver":"macvlan","network_interface":"eth0","subnets":[{"subnet":"10.88.0.0/16"}],"options":{"outbound_addr4":"198.18.0.3"}}`, false},
	} {
		o := setupOpts(t, tc.net, `["10.88.0.5"]`)
		err := o.ValidateSetup()
		if (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error(), "outbound_addr") {
			t.Errorf("%s: %v", tc.net, err)
		}
	}
	n := Network{Options: map[string]string{OptOutboundAddr4: "198.18.0.3"}}
	if n.OutboundAddr(false).String() != "198.18.0.3" || n.OutboundAddr(true).IsValid() {
		t.Errorf("OutboundAddr: %v %v", n.OutboundAddr(false), n.OutboundAddr(true))
	}
}

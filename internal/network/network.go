// Package network is berth's domain model: networks, subnets, routes, port
// mappings, the per-container attach options and the status a setup returns.
//
// The types marshal to and from exactly the JSON that Podman writes into its
// network files and that netavark reads on stdin and writes on stdout, so the
// same values serve the netavark front-end, the network store and the CLI.
// The package is a leaf: it does no I/O and imports no kernel packages, so
// everything here is tested without root.
package network

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Driver names.
const (
	DriverBridge  = "bridge"
	DriverMacvlan = "macvlan"
	DriverIPvlan  = "ipvlan"
)

// IPAM driver names (Network.IPAMOptions["driver"]).
const (
	IPAMHostLocal = "host-local"
	IPAMDHCP      = "dhcp"
	IPAMNone      = "none"
)

// Option keys of Network.Options.
const (
	OptMTU            = "mtu"
	OptIsolate        = "isolate"
	OptMetric         = "metric"
	OptNoDefaultRoute = "no_default_route"
	OptMode           = "mode"
	OptVRF            = "vrf"
	OptVLAN           = "vlan"
	// OptBclim is a macvlan network's broadcast cutoff: the number of
	// macvlans on the parent above which broadcasts are queued (-1: never
	// queue them); ip-link's "bclim".
	OptBclim = "bclim"
	// OptOutboundAddr4 and OptOutboundAddr6 name the host address a
	// bridge network's outgoing traffic is source-NATed to, instead of
	// masquerading to the outgoing interface's address (netavark 2.x).
	OptOutboundAddr4 = "outbound_addr4"
	OptOutboundAddr6 = "outbound_addr6"
	// OptSourceMACs lists, comma-separated, the MAC addresses a macvlan
	// link of mode source receives frames from (ip-link's "macaddr set").
	OptSourceMACs = "source_macs"
	// OptNoMasquerade ("true") leaves outgoing traffic of a bridge network
	// unmasqueraded; berth's CNI bridge sets it for ipMasq false.
	OptNoMasquerade = "no_masquerade"
	// OptGwPriority, a per-attachment option (PerNetworkOptions.Options),
	// is Docker's gw_priority: the metric of the attachment's default
	// routes is the network's less the priority, so the highest
	// priority's route is preferred.
	OptGwPriority = "gw_priority"
)

// GwPriorityMetric is the metric of default routes of priority p on a
// network whose route metric is base (clamped to 1..2^31).
func GwPriorityMetric(base uint32, p int) uint32 {
	m := int64(base) - int64(p)
	return uint32(min(max(m, 1), 1<<31))
}

// Network is one network definition: a Podman network file and the values of
// netavark's network_info map.
type Network struct {
	Name              string            `json:"name"`
	ID                string            `json:"id"`
	Driver            string            `json:"driver"`
	NetworkInterface  string            `json:"network_interface,omitempty"`
	Created           string            `json:"created,omitempty"`
	Subnets           []Subnet          `json:"subnets,omitempty"`
	Routes            []Route           `json:"routes,omitempty"`
	IPv6Enabled       bool              `json:"ipv6_enabled"`
	Internal          bool              `json:"internal"`
	DNSEnabled        bool              `json:"dns_enabled"`
	NetworkDNSServers []netip.Addr      `json:"network_dns_servers,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	Options           map[string]string `json:"options,omitempty"`
	IPAMOptions       map[string]string `json:"ipam_options,omitempty"`
}

// Subnet is one subnet of a network with its optional gateway.
type Subnet struct {
	Subnet     netip.Prefix `json:"subnet"`
	Gateway    netip.Addr   `json:"gateway,omitzero"`
	LeaseRange *LeaseRange  `json:"lease_range,omitempty"`
}

// LeaseRange limits the addresses that IPAM hands out in a subnet.
type LeaseRange struct {
	StartIP netip.Addr `json:"start_ip,omitzero"`
	EndIP   netip.Addr `json:"end_ip,omitzero"`
}

// Route is a static route added inside the container.
type Route struct {
	Destination netip.Prefix `json:"destination"`
	Gateway     netip.Addr   `json:"gateway,omitzero"`
	Metric      *uint32      `json:"metric,omitempty"`
	RouteType   string       `json:"route_type,omitempty"`
}

// PortMapping publishes Range consecutive ports from the host to the container.
type PortMapping struct {
	HostIP        string `json:"host_ip"`
	ContainerPort uint16 `json:"container_port"`
	HostPort      uint16 `json:"host_port"`
	Range         uint16 `json:"range"`
	Protocol      string `json:"protocol"`
}

// PerNetworkOptions are the options of one container on one network.
type PerNetworkOptions struct {
	StaticIPs     []netip.Addr      `json:"static_ips,omitempty"`
	Aliases       []string          `json:"aliases,omitempty"`
	StaticMAC     string            `json:"static_mac,omitempty"`
	InterfaceName string            `json:"interface_name"`
	Options       map[string]string `json:"options,omitempty"`
}

// NamedNetworkOptions is one entry of the ordered networks list.
type NamedNetworkOptions struct {
	Name string
	PerNetworkOptions
}

// Attachments is the ordered list of networks a container joins. It decodes
// both shapes netavark accepts: a map of name to options (Podman up to 5) and
// an array of objects with a "name" field (netavark 2). A map keeps the order
// in which its keys appear in the JSON text.
type Attachments []NamedNetworkOptions

// UnmarshalJSON implements json.Unmarshaler for both shapes.
func (a *Attachments) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		*a = nil
		return nil
	}
	switch b[0] {
	case '[':
		var raw []json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return err
		}
		out := make(Attachments, 0, len(raw))
		for i, r := range raw {
			var e struct {
				Name string `json:"name"`
			}
			if err := json.Unmarshal(r, &e); err != nil {
				return fmt.Errorf("networks[%d]: %w", i, err)
			}
			var o PerNetworkOptions
			if err := json.Unmarshal(r, &o); err != nil {
				return fmt.Errorf("networks[%d]: %w", i, err)
			}
			out = append(out, NamedNetworkOptions{Name: e.Name, PerNetworkOptions: o})
		}
		*a = out
		return nil
	case '{':
		dec := json.NewDecoder(bytes.NewReader(b))
		if _, err := dec.Token(); err != nil {
			return err
		}
		var out Attachments
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			name, _ := tok.(string)
			var o PerNetworkOptions
			if err := dec.Decode(&o); err != nil {
				return fmt.Errorf("networks.%s: %w", name, err)
			}
			out = append(out, NamedNetworkOptions{Name: name, PerNetworkOptions: o})
		}
		*a = out
		return nil
	}
	return fmt.Errorf("networks: want an object or an array, got %.20q", b)
}

// MarshalJSON writes the map shape, which every netavark version reads.
func (a Attachments) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, n := range a {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(n.Name)
		buf.Write(k)
		buf.WriteByte(':')
		v, err := json.Marshal(n.PerNetworkOptions)
		if err != nil {
			return nil, err
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// Get returns the options for the named network.
func (a Attachments) Get(name string) (PerNetworkOptions, bool) {
	for _, n := range a {
		if n.Name == name {
			return n.PerNetworkOptions, true
		}
	}
	return PerNetworkOptions{}, false
}

// Options is what netavark reads on stdin for setup and teardown.
type Options struct {
	ContainerID       string             `json:"container_id"`
	ContainerName     string             `json:"container_name"`
	ContainerHostname string             `json:"container_hostname,omitempty"`
	PortMappings      []PortMapping      `json:"port_mappings,omitempty"`
	Networks          Attachments        `json:"networks"`
	NetworkInfo       map[string]Network `json:"network_info"`
	DNSServers        []netip.Addr       `json:"dns_servers,omitempty"`
}

// StatusBlock is what setup reports for one network.
type StatusBlock struct {
	DNSSearchDomains []string             `json:"dns_search_domains"`
	DNSServerIPs     []netip.Addr         `json:"dns_server_ips"`
	Interfaces       map[string]Interface `json:"interfaces"`
}

// Interface is one container interface in a StatusBlock.
type Interface struct {
	MACAddress string       `json:"mac_address"`
	Subnets    []NetAddress `json:"subnets"`
}

// NetAddress is a container address with its prefix and gateway.
type NetAddress struct {
	Gateway *netip.Addr  `json:"gateway"`
	IPNet   netip.Prefix `json:"ipnet"`
}

// DNSSearchDomain is the search domain container names resolve under.
const DNSSearchDomain = "dns.podman"

// Option returns Options[key] or "".
func (n *Network) Option(key string) string {
	if n.Options == nil {
		return ""
	}
	return n.Options[key]
}

// SourceMACs returns the MAC addresses of the source_macs option (none when
// it is unset), or an error naming the first that is not a MAC.
func (n *Network) SourceMACs() ([]net.HardwareAddr, error) {
	v := n.Option(OptSourceMACs)
	if v == "" {
		return nil, nil
	}
	var out []net.HardwareAddr
	for _, s := range strings.Split(v, ",") {
		hw, err := ParseMAC(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		out = append(out, hw)
	}
	return out, nil
}

// IPAMDriver returns the IPAM driver, defaulting to host-local.
func (n *Network) IPAMDriver() string {
	if d := n.IPAMOptions["driver"]; d != "" {
		return d
	}
	return IPAMHostLocal
}

// Gateways returns the gateways of all subnets, in subnet order.
func (n *Network) Gateways() []netip.Addr {
	var gws []netip.Addr
	for _, s := range n.Subnets {
		if s.Gateway.IsValid() {
			gws = append(gws, s.Gateway)
		}
	}
	return gws
}

// SubnetFor returns the subnet that contains ip.
func (n *Network) SubnetFor(ip netip.Addr) (Subnet, bool) {
	for _, s := range n.Subnets {
		if s.Subnet.Contains(ip) {
			return s, true
		}
	}
	return Subnet{}, false
}

// ShortID returns the first 12 characters of a container or network ID.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// NormalizeProtocol lower-cases a protocol name.
func NormalizeProtocol(p string) string { return strings.ToLower(strings.TrimSpace(p)) }

// LastAddr returns the last address of a prefix (its broadcast address for
// IPv4).
func LastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - uint(i%8))
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// ParseAddrList parses addresses given as repeated and/or comma-separated
// values (a flag like --dns 1.1.1.1,8.8.8.8); empty parts are skipped. A bad
// value gives an *AddrError.
func ParseAddrList(vals []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			a, err := netip.ParseAddr(p)
			if err != nil {
				return nil, &AddrError{Value: p}
			}
			out = append(out, a)
		}
	}
	return out, nil
}

// AddrError reports a value that is not an IP address (or, with Subnet,
// not a subnet in CIDR notation); Field, when set, is its JSON path.
type AddrError struct {
	Value  string
	Field  string
	Subnet bool
}

func (e *AddrError) Error() string {
	what := "an IP address"
	if e.Subnet {
		what = "a subnet (address/prefix length)"
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %q is not %s", e.Field, e.Value, what)
	}
	return fmt.Sprintf("%q is not %s", e.Value, what)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *AddrError) Unwrap() error { return ErrInvalid }

// OutboundAddr returns the address the network's outgoing traffic of one
// family is source-NATed to (outbound_addr4 or outbound_addr6), or the
// zero Addr: masquerade.
func (n Network) OutboundAddr(v6 bool) netip.Addr {
	k := OptOutboundAddr4
	if v6 {
		k = OptOutboundAddr6
	}
	a, err := netip.ParseAddr(n.Option(k))
	if err != nil || a.Is6() != v6 || a.Is4In6() {
		return netip.Addr{}
	}
	return a
}

package dockerapi

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"time"

	dnet "github.com/moby/moby/api/types/network"

	"github.com/berthnet/berth/internal/network"
)

// Docker's driver options (com.docker.network.*) and what berth makes of
// them: a berth field or option, or a refusal naming the option.
const (
	optBridgeName   = "com.docker.network.bridge.name"
	optMTU          = "com.docker.network.driver.mtu"
	optMasquerade   = "com.docker.network.bridge.enable_ip_masquerade"
	optICC          = "com.docker.network.bridge.enable_icc"
	optHostBinding4 = "com.docker.network.bridge.host_binding_ipv4"
	optDefaultBr    = "com.docker.network.bridge.default_bridge"
	optEnableIPv6   = "com.docker.network.enable_ipv6"
	optInternal     = "com.docker.network.internal"
	optGatewayMode4 = "com.docker.network.bridge.gateway_mode_ipv4"
	optGatewayMode6 = "com.docker.network.bridge.gateway_mode_ipv6"
	optMacvlanMode  = "macvlan_mode"
	optIpvlanMode   = "ipvlan_mode"
	optParent       = "parent"
)

// podmanOptions are the option names of Podman's network files, which a
// Docker client may pass too.
var podmanOptions = map[string]bool{
	network.OptMTU: true, network.OptIsolate: true, network.OptMetric: true,
	network.OptNoDefaultRoute: true, network.OptMode: true, network.OptVRF: true,
	network.OptVLAN: true, network.OptBclim: true, network.OptOutboundAddr4: true,
	network.OptOutboundAddr6: true, network.OptSourceMACs: true, network.OptNoMasquerade: true,
}

// NetworkFromCreate translates a Docker network create request into a
// berth network (to be completed with a free subnet and bridge name by
// the backend). Every field and option berth cannot honour is refused
// with an error naming it.
func NetworkFromCreate(req dnet.CreateRequest) (network.Network, error) {
	n := network.Network{Name: req.Name, Driver: req.Driver, Labels: req.Labels, DNSEnabled: true}
	if n.Name == "" {
		return n, fmt.Errorf("network name is required: %w", ErrInvalid)
	}
	switch n.Driver {
	case "", network.DriverBridge:
		n.Driver = network.DriverBridge
	case network.DriverMacvlan, network.DriverIPvlan:
		n.DNSEnabled = false
	default:
		return n, fmt.Errorf("network driver %q is not supported by berth (bridge, macvlan or ipvlan): %w", req.Driver, ErrNotFound)
	}
	if req.Scope != "" && req.Scope != "local" {
		return n, fmt.Errorf("network scope %q: berth networks are local: %w", req.Scope, ErrInvalid)
	}
	if req.Ingress || req.ConfigOnly || req.ConfigFrom != nil && req.ConfigFrom.Network != "" {
		return n, fmt.Errorf("ingress, config-only and config-from networks are swarm features berth does not have: %w", ErrNotImplemented)
	}
	if req.EnableIPv4 != nil && !*req.EnableIPv4 {
		return n, fmt.Errorf("EnableIPv4=false: berth networks always have IPv4: %w", ErrNotImplemented)
	}
	n.Internal = req.Internal
	if req.EnableIPv6 != nil {
		n.IPv6Enabled = *req.EnableIPv6
	}
	if err := applyIPAM(&n, req.IPAM); err != nil {
		return n, err
	}
	if err := applyDriverOptions(&n, req.Options); err != nil {
		return n, err
	}
	return n, nil
}

func applyIPAM(n *network.Network, ipam *dnet.IPAM) error {
	if ipam == nil {
		return nil
	}
	if ipam.Driver != "" && ipam.Driver != "default" {
		return fmt.Errorf("IPAM driver %q is not supported by berth (default): %w", ipam.Driver, ErrInvalid)
	}
	if len(ipam.Options) > 0 {
		return fmt.Errorf("IPAM options are not supported by berth: %w", ErrInvalid)
	}
	for i, c := range ipam.Config {
		if len(c.AuxAddress) > 0 {
			return fmt.Errorf("IPAM.Config[%d].AuxiliaryAddresses: not supported by berth: %w", i, ErrInvalid)
		}
		if !c.Subnet.IsValid() {
			if c.Gateway.IsValid() || c.IPRange.IsValid() {
				return fmt.Errorf("IPAM.Config[%d]: a gateway or IP range needs a subnet: %w", i, ErrInvalid)
			}
			continue
		}
		s := network.Subnet{Subnet: c.Subnet.Masked(), Gateway: c.Gateway}
		if c.Subnet.Addr().Is6() {
			n.IPv6Enabled = true
		}
		if c.IPRange.IsValid() {
			r, err := leaseRange(c.Subnet.Masked(), c.IPRange)
			if err != nil {
				return fmt.Errorf("IPAM.Config[%d].IPRange: %v: %w", i, err, ErrInvalid)
			}
			s.LeaseRange = r
		}
		n.Subnets = append(n.Subnets, s)
	}
	return nil
}

// leaseRange turns Docker's IPRange (a prefix inside the subnet) into
// berth's first and last address.
func leaseRange(subnet, r netip.Prefix) (*network.LeaseRange, error) {
	r = r.Masked()
	if r.Addr().Is4() != subnet.Addr().Is4() || r.Bits() < subnet.Bits() || !subnet.Contains(r.Addr()) {
		return nil, fmt.Errorf("%s is not inside the subnet %s", r, subnet)
	}
	return &network.LeaseRange{StartIP: r.Addr(), EndIP: lastAddr(r)}, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - uint(i%8))
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func applyDriverOptions(n *network.Network, opts map[string]string) error {
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := applyDriverOption(n, k, opts[k]); err != nil {
			return fmt.Errorf("driver option %s=%q: %w", k, opts[k], err)
		}
	}
	return nil
}

func applyDriverOption(n *network.Network, k, v string) error {
	setOpt := func(key, val string) {
		if n.Options == nil {
			n.Options = map[string]string{}
		}
		n.Options[key] = val
	}
	b, berr := strconv.ParseBool(v)
	switch k {
	case optBridgeName:
		if n.Driver != network.DriverBridge || !network.ValidInterfaceName(v) {
			return fmt.Errorf("want an interface name for a bridge network: %w", ErrInvalid)
		}
		n.NetworkInterface = v
	case optParent:
		if n.Driver == network.DriverBridge {
			return fmt.Errorf("only macvlan and ipvlan networks take a parent: %w", ErrInvalid)
		}
		n.NetworkInterface = v
	case optMacvlanMode, optIpvlanMode:
		setOpt(network.OptMode, v)
	case optMTU:
		setOpt(network.OptMTU, v)
	case optMasquerade:
		if berr != nil {
			return fmt.Errorf("want true or false: %w", ErrInvalid)
		}
		if !b {
			setOpt(network.OptNoMasquerade, "true")
		}
	case optEnableIPv6:
		if berr != nil {
			return fmt.Errorf("want true or false: %w", ErrInvalid)
		}
		n.IPv6Enabled = n.IPv6Enabled || b
	case optInternal:
		if berr != nil {
			return fmt.Errorf("want true or false: %w", ErrInvalid)
		}
		n.Internal = n.Internal || b
	case optICC:
		if berr != nil || !b {
			return fmt.Errorf("berth always lets containers of one network talk to each other (only true is accepted): %w", ErrNotImplemented)
		}
	case optHostBinding4:
		if v != "" && v != "0.0.0.0" {
			return fmt.Errorf("berth's networks have no default host address for published ports (only 0.0.0.0 is accepted): give the address with each port, as in -p 127.0.0.1:8080:80: %w", ErrNotImplemented)
		}
	case optDefaultBr:
		if berr != nil || b {
			return fmt.Errorf("berth does not create Docker's default bridge: %w", ErrNotImplemented)
		}
	case optGatewayMode4, optGatewayMode6:
		if v != "" && v != "nat" {
			return fmt.Errorf("berth networks are NATed (only nat is accepted): %w", ErrNotImplemented)
		}
	default:
		// Podman's own option names (isolate, metric, vlan...) pass
		// through to berth's validation.
		if podmanOptions[k] {
			setOpt(k, v)
			return nil
		}
		return fmt.Errorf("unknown driver option: %w", ErrInvalid)
	}
	return nil
}

// NetworkInspect is a berth network in Docker's inspect shape.
func NetworkInspect(info NetworkInfo) dnet.Inspect {
	n := info.Network
	out := dnet.Inspect{
		Network: dnet.Network{
			Name:       n.Name,
			ID:         n.ID,
			Scope:      "local",
			Driver:     n.Driver,
			EnableIPv4: true,
			EnableIPv6: n.IPv6Enabled,
			IPAM:       dnet.IPAM{Driver: "default", Options: map[string]string{}, Config: []dnet.IPAMConfig{}},
			Internal:   n.Internal,
			Attachable: true,
			Options:    dockerOptions(n),
			Labels:     n.Labels,
		},
		Containers: map[string]dnet.EndpointResource{},
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if t, err := time.Parse(time.RFC3339Nano, n.Created); err == nil {
		out.Created = t
	}
	for _, s := range n.Subnets {
		c := dnet.IPAMConfig{Subnet: s.Subnet, Gateway: s.Gateway}
		if s.LeaseRange != nil {
			c.IPRange = rangePrefix(s.LeaseRange)
		}
		out.IPAM.Config = append(out.IPAM.Config, c)
	}
	for _, ep := range info.Endpoints {
		mac, _ := net.ParseMAC(ep.MAC)
		out.Containers[ep.ContainerID] = dnet.EndpointResource{
			Name:        ep.Name,
			EndpointID:  EndpointID(n.ID, ep.ContainerID),
			MacAddress:  dnet.HardwareAddr(mac),
			IPv4Address: ep.IPv4,
			IPv6Address: ep.IPv6,
		}
	}
	return out
}

// rangePrefix is the largest prefix starting at the lease range's first
// address that stays inside it (Docker's IPRange is a prefix).
func rangePrefix(r *network.LeaseRange) netip.Prefix {
	if !r.StartIP.IsValid() {
		return netip.Prefix{}
	}
	for bits := 0; bits <= r.StartIP.BitLen(); bits++ {
		p := netip.PrefixFrom(r.StartIP, bits)
		if p.Masked().Addr() != r.StartIP {
			continue
		}
		if !r.EndIP.IsValid() || lastAddr(p).Compare(r.EndIP) <= 0 {
			return p
		}
	}
	return netip.PrefixFrom(r.StartIP, r.StartIP.BitLen())
}

// dockerOptions shows berth's network settings under Docker's option
// names where Docker has one, and berth's own options as they are.
func dockerOptions(n network.Network) map[string]string {
	out := map[string]string{}
	for k, v := range n.Options {
		switch k {
		case network.OptMTU:
			out[optMTU] = v
		case network.OptNoMasquerade:
			if b, _ := strconv.ParseBool(v); b {
				out[optMasquerade] = "false"
			}
		case network.OptMode:
			if n.Driver == network.DriverMacvlan {
				out[optMacvlanMode] = v
			} else if n.Driver == network.DriverIPvlan {
				out[optIpvlanMode] = v
			} else {
				out[k] = v
			}
		default:
			out[k] = v
		}
	}
	if n.NetworkInterface != "" {
		if n.Driver == network.DriverBridge {
			out[optBridgeName] = n.NetworkInterface
		} else {
			out[optParent] = n.NetworkInterface
		}
	}
	return out
}

// EndpointID is a stable 64-hex endpoint identifier for a container on a
// network (berth keeps no separate endpoint objects).
func EndpointID(networkID, containerID string) string {
	h := sha256.Sum256([]byte(networkID + "/" + containerID))
	return hex.EncodeToString(h[:])
}

// builtinNetworks are Docker's "host" and "none", which every Docker host
// lists; berth runs containers in them with --network host|none.
func builtinNetworks() []dnet.Inspect {
	var out []dnet.Inspect
	for _, b := range []struct{ name, driver string }{{"host", "host"}, {"none", "null"}} {
		h := sha256.Sum256([]byte("berth builtin network " + b.name))
		out = append(out, dnet.Inspect{
			Network: dnet.Network{
				Name: b.name, ID: hex.EncodeToString(h[:]), Scope: "local", Driver: b.driver,
				EnableIPv4: true,
				IPAM:       dnet.IPAM{Driver: "default", Options: map[string]string{}, Config: []dnet.IPAMConfig{}},
				Options:    map[string]string{}, Labels: map[string]string{},
			},
			Containers: map[string]dnet.EndpointResource{},
		})
	}
	return out
}

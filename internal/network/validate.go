package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid argument")

// FieldError reports a bad value: the JSON path of the field and what would
// be valid. Err, when set, is the typed reason (such as a
// *SubnetOverlapError) and Msg its text.
type FieldError struct {
	Field string
	Msg   string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap makes errors.Is(err, ErrInvalid) true, and errors.As find the
// typed reason.
func (e *FieldError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalid, e.Err}
	}
	return []error{ErrInvalid}
}

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// fieldCause reports the typed reason err for field.
func fieldCause(field string, err error) error {
	return &FieldError{Field: field, Msg: err.Error(), Err: err}
}

// Isolation modes of a bridge network (option "isolate").
type Isolation int

// Isolation values.
const (
	IsolateNone   Isolation = iota // may reach every network
	IsolateTrue                    // may not reach other isolated networks
	IsolateStrict                  // may not reach any other network
)

func (i Isolation) String() string {
	switch i {
	case IsolateTrue:
		return "true"
	case IsolateStrict:
		return "strict"
	}
	return "false"
}

// ParseIsolation parses the "isolate" option.
func ParseIsolation(s string) (Isolation, error) {
	switch strings.ToLower(s) {
	case "", "false", "0", "no":
		return IsolateNone, nil
	case "true", "1", "yes":
		return IsolateTrue, nil
	case "strict":
		return IsolateStrict, nil
	}
	return 0, fmt.Errorf("%q is not an isolation mode (want true, false or strict)", s)
}

// Isolation returns the network's isolation mode; Validate rejects bad
// values. Without the isolate option it is strict, as in netavark 2.x:
// isolate=false gives the old behaviour, a network that may reach every
// other.
func (n *Network) Isolation() Isolation {
	v := n.Option(OptIsolate)
	if v == "" {
		return IsolateStrict
	}
	i, _ := ParseIsolation(v)
	return i
}

// MTU returns the "mtu" option, 0 when unset.
func (n *Network) MTU() int {
	v, _ := strconv.Atoi(n.Option(OptMTU))
	return v
}

// VLAN returns the "vlan" option, 0 when unset: the VLAN a bridge port is
// put in (untagged, as its PVID).
func (n *Network) VLAN() int {
	v, _ := strconv.Atoi(n.Option(OptVLAN))
	return v
}

// BroadcastCutoff returns the "bclim" option of a macvlan network, and
// whether it is set.
func (n *Network) BroadcastCutoff() (int32, bool) {
	v, err := strconv.ParseInt(n.Option(OptBclim), 10, 32)
	return int32(v), err == nil
}

// Metric returns the default-route metric: the "metric" option or def.
func (n *Network) Metric(def uint32) uint32 {
	if v, err := strconv.ParseUint(n.Option(OptMetric), 10, 32); err == nil {
		return uint32(v)
	}
	return def
}

// NoMasquerade reports whether the "no_masquerade" option is set.
func (n *Network) NoMasquerade() bool {
	v, _ := strconv.ParseBool(n.Option(OptNoMasquerade))
	return v
}

// NoDefaultRoute reports whether the "no_default_route" option is set.
func (n *Network) NoDefaultRoute() bool {
	v, _ := strconv.ParseBool(n.Option(OptNoDefaultRoute))
	return v
}

// Unmanaged reports whether a bridge network uses an existing bridge that
// berth must not create, configure or delete (option mode=unmanaged).
func (n *Network) Unmanaged() bool {
	return n.Driver == DriverBridge && n.Option(OptMode) == "unmanaged"
}

// ValidInterfaceName reports whether s is a valid Linux interface name.
func ValidInterfaceName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if r == '/' || r == ':' || r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

var macvlanModes = map[string]bool{"": true, "bridge": true, "private": true, "vepa": true, "passthru": true, "source": true}
var ipvlanModes = map[string]bool{"": true, "l2": true, "l3": true, "l3s": true}

// Validate checks a new network definition, strictly: also that no subnet
// overlaps a reserved range or is too small (CheckSubnet).
func (n *Network) Validate() error { return n.validate(true) }

// ValidateExisting checks a network that may have been created before
// the rules of new networks (Validate): what tears down or collects its
// containers needs no more, so that nothing it left stays.
func (n *Network) ValidateExisting() error { return n.validate(false) }

// validate checks a network definition; strict adds the rules for new
// networks, which one that exists already need not meet to be torn down.
func (n *Network) validate(strict bool) error {
	f := "network " + n.Name
	if n.Name == "" {
		return fieldErr("name", "must not be empty")
	}
	if err := n.validateDrivers(f); err != nil {
		return err
	}
	if err := n.validateSubnets(f, strict); err != nil {
		return err
	}
	for k, v := range n.Options {
		if err := n.validateOption(f+".options."+k, k, v); err != nil {
			return err
		}
	}
	return n.validateRoutes(f)
}

// validateDrivers checks the network driver, the interface name and the
// IPAM driver; f names the network in errors.
func (n *Network) validateDrivers(f string) error {
	switch n.Driver {
	case DriverBridge, DriverMacvlan, DriverIPvlan:
	default:
		return fieldCause(f+".driver", &DriverError{Driver: n.Driver})
	}
	if n.NetworkInterface != "" && !ValidInterfaceName(n.NetworkInterface) {
		return fieldErr(f+".network_interface", "%q is not a valid interface name (1-15 characters, no '/', ':' or spaces)", n.NetworkInterface)
	}
	if n.Driver == DriverBridge && n.NetworkInterface == "" {
		return fieldErr(f+".network_interface", "a bridge network needs the bridge name")
	}
	switch d := n.IPAMDriver(); d {
	case IPAMHostLocal, IPAMNone:
	case IPAMDHCP:
		if n.Driver == DriverBridge && !n.Unmanaged() {
			return fieldCause(f+".ipam_options.driver", ErrDHCPManagedBridge)
		}
	default:
		return fieldCause(f+".ipam_options.driver", &IPAMDriverError{Driver: d})
	}
	return nil
}

// validateSubnets checks that each subnet is set and holds its gateway
// and lease range, and with strict, that no two overlap and each passes
// CheckSubnet.
func (n *Network) validateSubnets(f string, strict bool) error {
	if err := n.checkOverlaps(f); strict && err != nil {
		return err
	}
	for i, s := range n.Subnets {
		sf := fmt.Sprintf("%s.subnets[%d]", f, i)
		if !s.Subnet.IsValid() {
			return fieldErr(sf+".subnet", "missing or not a CIDR")
		}
		if err := CheckSubnet(s.Subnet); strict && err != nil {
			return fieldCause(sf+".subnet", err)
		}
		if s.Gateway.IsValid() && !s.Subnet.Contains(s.Gateway) {
			return fieldCause(sf+".gateway", &GatewayError{Gateway: s.Gateway, Subnet: s.Subnet})
		}
		if s.LeaseRange != nil {
			for i, a := range []netip.Addr{s.LeaseRange.StartIP, s.LeaseRange.EndIP} {
				if a.IsValid() && !s.Subnet.Contains(a) {
					return fieldCause(sf+".lease_range", &LeaseRangeError{Addr: a, Subnet: s.Subnet, End: i == 1})
				}
			}
		}
	}
	return nil
}

// checkOverlaps reports the first pair of the network's subnets that
// share addresses, as a *SubnetOverlapError; f names the network.
func (n *Network) checkOverlaps(f string) error {
	for i, a := range n.Subnets {
		for j := i + 1; j < len(n.Subnets); j++ {
			b := n.Subnets[j]
			if a.Subnet.IsValid() && b.Subnet.IsValid() && a.Subnet.Masked().Overlaps(b.Subnet.Masked()) {
				return fieldCause(fmt.Sprintf("%s.subnets[%d].subnet", f, j), &SubnetOverlapError{First: a.Subnet, Second: b.Subnet})
			}
		}
	}
	return nil
}

// validateOption checks one driver option k=v; of names it in errors.
// Options berth does not interpret are not checked.
func (n *Network) validateOption(of, k, v string) error {
	switch k {
	case OptMTU:
		m, err := strconv.Atoi(v)
		if err == nil && (m < 0 || (m > 0 && m < 68) || m > 65535) {
			err = ErrOutOfRange
		}
		if err != nil {
			return fieldCause(of, &OptionError{Key: k, Value: v, Min: 68, Max: 65535, Err: err, Want: "an MTU (want 68-65535, or 0 for the default)"})
		}
	case OptVLAN:
		id, err := strconv.Atoi(v)
		if err == nil && (id < 0 || id > 4094) {
			err = ErrOutOfRange
		}
		if err != nil {
			return fieldCause(of, &OptionError{Key: k, Value: v, Min: 0, Max: 4094, Err: err, Want: "a VLAN ID (want 0-4094)"})
		}
	case OptIsolate:
		if n.Driver != DriverBridge {
			return fieldErr(of, "only bridge networks can be isolated")
		}
		if _, err := ParseIsolation(v); err != nil {
			return fieldErr(of, "%v", err)
		}
	case OptMetric:
		if _, err := strconv.ParseUint(v, 10, 32); err != nil {
			return fieldErr(of, "%q is not a route metric (want 0-4294967295)", v)
		}
	case OptNoDefaultRoute, OptNoMasquerade:
		if _, err := strconv.ParseBool(v); err != nil {
			return fieldErr(of, "%q is not a boolean (want true or false)", v)
		}
	case OptMode:
		if !n.validMode(v) {
			return fieldErr(of, "%q is not a %s mode", v, n.Driver)
		}
	case OptVRF:
		if n.Driver != DriverBridge || !ValidInterfaceName(v) {
			return fieldErr(of, "%q: want the name of a VRF device, bridge networks only", v)
		}
	case OptOutboundAddr4, OptOutboundAddr6:
		a, err := netip.ParseAddr(v)
		v6 := k == OptOutboundAddr6
		if err != nil || a.Is6() != v6 || a.Is4In6() || !a.IsGlobalUnicast() {
			fam := "IPv4"
			if v6 {
				fam = "IPv6"
			}
			return fieldErr(of, "%q is not a unicast %s address (the host address outgoing traffic leaves from)", v, fam)
		}
		if n.Driver != DriverBridge {
			return fieldErr(of, "only bridge networks take an outbound address")
		}
	case OptBclim:
		if n.Driver != DriverMacvlan {
			return fieldErr(of, "only macvlan networks take a broadcast cutoff")
		}
		if _, err := strconv.ParseInt(v, 10, 32); err != nil {
			return fieldErr(of, "%q is not a 32-bit integer (the broadcast cutoff; -1 turns broadcast queueing off)", v)
		}
	case OptSourceMACs:
		if n.Driver != DriverMacvlan || n.Option(OptMode) != "source" {
			return fieldErr(of, "only macvlan networks of mode source take source MACs")
		}
		if _, err := n.SourceMACs(); err != nil {
			return fieldErr(of, "%v", err)
		}
	}
	return nil
}

// validMode reports whether v is a mode of the network's driver.
func (n *Network) validMode(v string) bool {
	switch n.Driver {
	case DriverBridge:
		return v == "" || v == "managed" || v == "unmanaged"
	case DriverMacvlan:
		return macvlanModes[v]
	case DriverIPvlan:
		return ipvlanModes[v]
	}
	return false
}

// validateRoutes checks each route's destination, type, and for unicast
// routes the gateway and its address family.
func (n *Network) validateRoutes(f string) error {
	for i, r := range n.Routes {
		rf := fmt.Sprintf("%s.routes[%d]", f, i)
		if !r.Destination.IsValid() {
			return fieldErr(rf+".destination", "missing or not a CIDR")
		}
		routeErr := func(field string, problem error) error {
			return fieldCause(rf+field, &RouteError{Destination: r.Destination, Type: r.Type(), Problem: problem})
		}
		switch r.RouteType {
		case "", "unicast":
			if !r.Gateway.IsValid() {
				return routeErr(".gateway", ErrRouteNeedsGateway)
			}
			if r.Gateway.Is4() != r.Destination.Addr().Is4() {
				return fieldErr(rf+".gateway", "%s is not of the family of %s", r.Gateway, r.Destination)
			}
		case "blackhole", "unreachable", "prohibit":
			if r.Gateway.IsValid() {
				return routeErr(".gateway", ErrRouteHasGateway)
			}
		default:
			return routeErr(".route_type", ErrRouteType)
		}
	}
	return nil
}

// ParseMAC parses a MAC address given as static_mac.
func ParseMAC(s string) (net.HardwareAddr, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return nil, fmt.Errorf("%q is not an Ethernet MAC address", s)
	}
	return hw, nil
}

// Validate checks the input of a teardown and every network it names. It
// runs before anything is changed, so bad input leaves no trace. It is
// lenient where ValidateSetup is strict, so that what an earlier setup
// left can always be torn down.
func (o *Options) Validate() error { return o.validate(false) }

// ValidateSetup checks the input of a setup: what Validate checks, at
// least one network (as Podman requires before it runs netavark), the
// subnets (CheckSubnet), the static addresses (CheckHostAddr) and that no
// host port is published twice (CheckPortConflicts).
func (o *Options) ValidateSetup() error {
	if len(o.Networks) == 0 {
		return fieldErr("networks", "must specify at least one network")
	}
	return o.validate(true)
}

func (o *Options) validate(strict bool) error {
	if o.ContainerID == "" {
		return fieldErr("container_id", "must not be empty")
	}
	if strings.ContainsAny(o.ContainerID, " ,\n\t") {
		return fieldErr("container_id", "must not contain spaces, commas or newlines")
	}
	if strings.ContainsAny(o.ContainerName, " ,\n\t") {
		return fieldErr("container_name", "must not contain spaces, commas or newlines")
	}
	seenIf := map[string]string{}
	seenNet := map[string]bool{}
	for _, a := range o.Networks {
		f := "networks." + a.Name
		if seenNet[a.Name] {
			return fieldErr(f, "network listed twice")
		}
		seenNet[a.Name] = true
		n, ok := o.NetworkInfo[a.Name]
		if !ok {
			return fieldErr(f, "network %q has no entry in network_info", a.Name)
		}
		if n.Name == "" {
			n.Name = a.Name
		}
		if err := n.validate(strict); err != nil {
			return err
		}
		if err := validateAttachment(f, &a, &n, seenIf, strict); err != nil {
			return err
		}
	}
	for i, pm := range o.PortMappings {
		if err := pm.Validate(); err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				fe.Field = fmt.Sprintf("port_mappings[%d].%s", i, fe.Field)
			}
			return err
		}
	}
	if !strict {
		return nil
	}
	if err := CheckPortConflicts(o.PortMappings); err != nil {
		var pc *PortConflictError
		if errors.As(err, &pc) {
			return fieldErr(fmt.Sprintf("port_mappings[%d].host_port", pc.Second), "%v", err)
		}
		return err
	}
	return nil
}

// validateAttachment checks the container's side of one network: its
// interface name (unique across networks, recorded in seenIf), static
// MAC, host interface name, aliases and static IPs (strict: see
// validateStaticIPs). f names it in errors.
func validateAttachment(f string, a *NamedNetworkOptions, n *Network, seenIf map[string]string, strict bool) error {
	if a.InterfaceName == "" {
		return fieldErr(f+".interface_name", "no container interface name given")
	}
	if !ValidInterfaceName(a.InterfaceName) {
		return fieldErr(f+".interface_name", "%q is not a valid interface name (1-15 characters, no '/', ':' or spaces)", a.InterfaceName)
	}
	if other, dup := seenIf[a.InterfaceName]; dup {
		return fieldErr(f+".interface_name", "%q is also used on network %s", a.InterfaceName, other)
	}
	seenIf[a.InterfaceName] = a.Name
	if a.StaticMAC != "" {
		if _, err := ParseMAC(a.StaticMAC); err != nil {
			return fieldErr(f+".static_mac", "%v", err)
		}
	}
	if h := a.Options["host_interface_name"]; h != "" && !ValidInterfaceName(h) {
		return fieldErr(f+".options.host_interface_name", "%q is not a valid interface name", h)
	}
	for _, al := range a.Aliases {
		if errors.Is(CheckAlias(al), ErrAliasChars) {
			return fieldErr(f+".aliases", "%q must not contain spaces, commas or newlines", al)
		}
	}
	if n.IPAMDriver() == IPAMHostLocal && n.Subnets != nil {
		// A network without a subnets key gets no addresses, and its
		// static IPs are ignored, as netavark does.
		return validateStaticIPs(f, a, n, strict)
	}
	return nil
}

// validateStaticIPs checks that a host-local attachment has static IPs,
// each in a subnet of n and, with strict, not its subnet's network or
// broadcast address. A static IP that is the gateway passes, as netavark
// 2.1 lets it (the container then shadows the gateway); berth's own
// allocation (package ipam) refuses to hand it out.
func validateStaticIPs(f string, a *NamedNetworkOptions, n *Network, strict bool) error {
	if len(a.StaticIPs) == 0 {
		return fieldErr(f+".static_ips", "no static ips provided (host-local IPAM needs one per subnet)")
	}
	for i, ip := range a.StaticIPs {
		sf := fmt.Sprintf("%s.static_ips[%d]", f, i)
		s, ok := n.SubnetFor(ip)
		if !ok {
			return fieldCause(sf, &UnmatchedIPError{IP: ip, Network: a.Name, Subnets: n.Subnets, Want: len(a.StaticIPs), Matched: n.countInSubnets(a.StaticIPs)})
		}
		if err := CheckHostAddr(s.Subnet, ip); strict && err != nil {
			return fieldErr(sf, "%v", err)
		}
	}
	return nil
}

// countInSubnets counts the addresses of ips that are in a subnet of n.
func (n *Network) countInSubnets(ips []netip.Addr) int {
	c := 0
	for _, ip := range ips {
		if _, ok := n.SubnetFor(ip); ok {
			c++
		}
	}
	return c
}

func subnetList(s []Subnet) string {
	var p []string
	for _, x := range s {
		p = append(p, x.Subnet.String())
	}
	if len(p) == 0 {
		return "no subnets"
	}
	return strings.Join(p, ", ")
}

// Ports returns the number of ports in the mapping (Range, at least 1).
func (p PortMapping) Ports() int {
	if p.Range == 0 {
		return 1
	}
	return int(p.Range)
}

// HostAddr parses HostIP; an empty HostIP gives the zero Addr (all addresses).
func (p PortMapping) HostAddr() (netip.Addr, error) {
	if p.HostIP == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(p.HostIP)
	if err != nil {
		return netip.Addr{}, err
	}
	return a.Unmap(), nil
}

// Validate checks one port mapping.
func (p PortMapping) Validate() error {
	switch NormalizeProtocol(p.Protocol) {
	case "tcp", "udp", "sctp":
	default:
		return fieldErr("protocol", "%q is not a protocol (want tcp, udp or sctp)", p.Protocol)
	}
	if p.HostPort == 0 {
		return fieldErr("host_port", "must be 1-65535")
	}
	if p.ContainerPort == 0 {
		return fieldErr("container_port", "must be 1-65535")
	}
	n := p.Ports()
	if int(p.HostPort)+n-1 > 65535 || int(p.ContainerPort)+n-1 > 65535 {
		return fieldErr("range", "%d ports from %d (host) and %d (container) go past 65535", n, p.HostPort, p.ContainerPort)
	}
	if _, err := p.HostAddr(); err != nil {
		return fieldCause("host_ip", &HostIPError{Value: p.HostIP, Port: p.HostPort})
	}
	return nil
}

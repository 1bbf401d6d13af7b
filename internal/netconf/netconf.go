// Package netconf completes and validates a new network definition the way
// Podman and netavark's `create` do: name and ID checks, the bridge name
// (podmanN), a free subnet from the pools, gateways, option normalisation.
// It is pure logic: what is "used" (names, bridge names, subnets on the host)
// is passed in, so the package is tested without root.
package netconf

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthnet/berth/internal/network"
)

// ErrExists is returned when a network name or ID is taken.
var ErrExists = errors.New("network already exists")

// ErrNoFreeSubnet is returned when every block of the pools is in use.
var ErrNoFreeSubnet = errors.New("could not find free subnet from subnet pools")

// SubnetPool is one pool that automatic subnets are cut from.
type SubnetPool struct {
	Base netip.Prefix `json:"base"`
	Size int          `json:"size"`
}

// DefaultPools are Podman's default_subnet_pools.
var DefaultPools = []SubnetPool{
	{netip.MustParsePrefix("10.89.0.0/16"), 24},
	{netip.MustParsePrefix("10.90.0.0/15"), 24},
	{netip.MustParsePrefix("10.92.0.0/14"), 24},
	{netip.MustParsePrefix("10.96.0.0/11"), 24},
	{netip.MustParsePrefix("10.128.0.0/9"), 24},
}

// Used is what already exists: network names (to IDs), bridge and host
// interface names, and subnets in use by other networks or on the host.
type Used struct {
	Interfaces []string          `json:"interfaces"`
	Names      map[string]string `json:"names"`
	Subnets    []netip.Prefix    `json:"subnets"`
	// HostInterfaces, when not nil, are the host's own links: the parent
	// of a macvlan or ipvlan network must be one of them.
	HostInterfaces []string `json:"host_interfaces,omitempty"`
}

// Options steer the completion.
type Options struct {
	SubnetPools          []SubnetPool `json:"subnet_pools"`
	DefaultInterfaceName string       `json:"default_interface_name"`
	CheckUsedSubnets     bool         `json:"check_used_subnets"`
}

// Request is netavark's `create` input.
type Request struct {
	Network network.Network `json:"network"`
	Used    Used            `json:"used"`
	Options Options         `json:"options"`
}

// InvalidError is a rejected value. Its text is exactly the message (so the
// CLI can print Podman's wording), and it unwraps to network.ErrInvalid.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// Unwrap makes errors.Is(err, network.ErrInvalid) true.
func (e *InvalidError) Unwrap() error { return network.ErrInvalid }

func invalid(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// Complete validates n and fills in what was left out. now is the creation
// time to record.
// An empty name gets the first free podmanN (N not used as a network name,
// bridge name or host interface), which is also the bridge's name.
func Complete(n network.Network, used Used, opts Options, now time.Time) (network.Network, error) {
	if err := completeIdentity(&n, used, opts); err != nil {
		return n, err
	}
	if n.Driver == "" {
		n.Driver = network.DriverBridge
	}
	if n.NetworkInterface != "" && !network.ValidInterfaceName(n.NetworkInterface) {
		return n, invalid("interface name %q is not valid: want 1-15 characters without '/', ':' or whitespace", n.NetworkInterface)
	}
	ipam, err := checkIPAMDriver(&n)
	if err != nil {
		return n, err
	}
	if err := normaliseOptions(&n); err != nil {
		return n, err
	}
	checkUsed, err := completeDriver(&n, used, opts, ipam)
	if err != nil {
		return n, err
	}
	if err := completeAddressing(&n, checkUsed, used); err != nil {
		return n, err
	}
	n.Created = now.UTC().Format(time.RFC3339Nano)
	return n, nil
}

// completeIdentity names the network when it has no name (and its bridge,
// for a bridge without one), checks the name is valid and free, and
// checks a given ID or makes a random one.
func completeIdentity(n *network.Network, used Used, opts Options) error {
	if n.Name == "" && (n.Driver == "" || n.Driver == network.DriverBridge) && n.NetworkInterface == "" {
		n.Name = FreeDeviceName(used, opts.DefaultInterfaceName)
		n.NetworkInterface = n.Name
	} else if n.Name == "" {
		n.Name = FreeDeviceName(used, opts.DefaultInterfaceName)
	}
	if !network.ValidName(n.Name) {
		return invalid("network name %s invalid: names must match %s: invalid argument", n.Name, network.NameRule)
	}
	if _, ok := used.Names[n.Name]; ok {
		return fmt.Errorf("network name %s already used: %w", n.Name, ErrExists)
	}
	if n.ID == "" {
		n.ID = randomID()
		return nil
	}
	if len(n.ID) != 64 || !isHex(n.ID) {
		return invalid("network id %q must be 64 hexadecimal characters", n.ID)
	}
	for name, id := range used.Names {
		if id == n.ID {
			return fmt.Errorf("network id %s already used by network %s: %w", network.ShortID(n.ID), name, ErrExists)
		}
	}
	return nil
}

// checkIPAMDriver makes sure n has IPAM options and returns the IPAM
// driver asked for ("" when none was), rejecting unknown drivers and
// subnets given with the none driver.
func checkIPAMDriver(n *network.Network) (string, error) {
	if n.IPAMOptions == nil {
		n.IPAMOptions = map[string]string{}
	}
	ipam := n.IPAMOptions["driver"]
	switch ipam {
	case "", network.IPAMHostLocal, network.IPAMDHCP, network.IPAMNone:
	default:
		return ipam, invalid("unsupported ipam driver %q (want host-local, dhcp or none)", ipam)
	}
	if ipam == network.IPAMNone && len(n.Subnets) > 0 {
		return ipam, invalid("none ipam driver is set but subnets are given")
	}
	return ipam, nil
}

// completeDriver does the driver's own completion and checks, and
// reports whether the network's subnets must avoid those already used.
func completeDriver(n *network.Network, used Used, opts Options, ipam string) (checkUsed bool, err error) {
	checkUsed = opts.CheckUsedSubnets
	switch n.Driver {
	case network.DriverBridge:
		if n.Unmanaged() {
			checkUsed = false
		}
		if err := completeBridge(n, used, opts, checkUsed); err != nil {
			return checkUsed, err
		}
	case network.DriverMacvlan, network.DriverIPvlan:
		if err := completeMacvlan(n, used, ipam); err != nil {
			return false, err
		}
		checkUsed = false
	default:
		return checkUsed, invalid("unsupported driver %s (want bridge, macvlan or ipvlan): invalid argument", n.Driver)
	}
	return checkUsed, nil
}

// completeMacvlan checks a macvlan or ipvlan network's parent interface
// and IPAM driver (dhcp without subnets, host-local with them, when none
// was asked for) and turns DNS off.
func completeMacvlan(n *network.Network, used Used, ipam string) error {
	if n.NetworkInterface != "" && used.HostInterfaces != nil && !contains(used.HostInterfaces, n.NetworkInterface) {
		return invalid("parent interface %s does not exist", n.NetworkInterface)
	}
	if ipam == "" {
		if len(n.Subnets) == 0 {
			n.IPAMOptions["driver"] = network.IPAMDHCP
		} else {
			n.IPAMOptions["driver"] = network.IPAMHostLocal
		}
	}
	switch n.IPAMOptions["driver"] {
	case network.IPAMHostLocal:
		if len(n.Subnets) == 0 {
			return invalid("%s driver needs at least one subnet specified when the host-local ipam driver is set", n.Driver)
		}
	case network.IPAMDHCP:
		if len(n.Subnets) > 0 {
			return invalid("ipam driver dhcp set but subnets are set")
		}
		if n.Driver == network.DriverIPvlan {
			return invalid("ipam driver dhcp is not supported with ipvlan")
		}
	}
	// DNS is not served on macvlan networks.
	n.DNSEnabled = false
	return nil
}

// completeAddressing settles the IPAM driver and DNS, completes the
// subnets and gateways, checks the routes and validates the result.
func completeAddressing(n *network.Network, checkUsed bool, used Used) error {
	if n.IPAMOptions["driver"] == "" {
		n.IPAMOptions["driver"] = network.IPAMHostLocal
	}
	if n.IPAMOptions["driver"] == network.IPAMNone {
		n.DNSEnabled = false
	}
	if len(n.NetworkDNSServers) > 0 && !n.DNSEnabled {
		return invalid("cannot set NetworkDNSServers if DNS is not enabled for the network: invalid argument")
	}
	addGateway := !n.Internal || n.DNSEnabled
	if n.Driver != network.DriverBridge {
		addGateway = !n.Internal
	}
	if err := completeSubnets(n, addGateway, checkUsed, used.Subnets); err != nil {
		return err
	}
	for _, r := range n.Routes {
		if !r.Destination.IsValid() || r.Destination.Masked() != r.Destination {
			return invalid("invalid route: destination %s must be a network address (such as %s)", r.Destination, r.Destination.Masked())
		}
	}
	return n.Validate()
}

// driverOptions are the -o keys each driver takes.
var driverOptions = map[string]map[string]bool{
	network.DriverBridge: {network.OptMTU: true, "vlan": true, network.OptIsolate: true, network.OptMetric: true,
		network.OptNoDefaultRoute: true, network.OptVRF: true, network.OptMode: true,
		"com.docker.network.bridge.name": true, "com.docker.network.driver.mtu": true},
	network.DriverMacvlan: {"parent": true, network.OptMode: true, network.OptMTU: true, network.OptMetric: true,
		network.OptNoDefaultRoute: true, "bclim": true},
	network.DriverIPvlan: {"parent": true, network.OptMode: true, network.OptMTU: true, network.OptMetric: true,
		network.OptNoDefaultRoute: true},
}

var driverModes = map[string][]string{
	network.DriverBridge:  {"managed", "unmanaged"},
	network.DriverMacvlan: {"bridge", "private", "vepa", "passthru"},
	network.DriverIPvlan:  {"l2", "l3", "l3s"},
}

// normaliseOptions checks n's -o options against its driver, writes
// booleans in canonical form and folds Docker's aliases and parent= into
// their own fields.
func normaliseOptions(n *network.Network) error {
	allowed, ok := driverOptions[n.Driver]
	if !ok {
		return invalid("unsupported driver %s (want bridge, macvlan or ipvlan): invalid argument", n.Driver)
	}
	for _, k := range sortedKeys(n.Options) {
		if !allowed[k] {
			return invalid("unsupported %s network option %s", n.Driver, k)
		}
		if err := checkOption(n, k, n.Options[k]); err != nil {
			return err
		}
	}
	return foldOptionAliases(n)
}

// checkOption checks one option's value, rewriting booleans as
// strconv.FormatBool does.
func checkOption(n *network.Network, k, v string) error {
	switch k {
	case network.OptMTU, "com.docker.network.driver.mtu":
		m, err := strconv.Atoi(v)
		if err != nil {
			return invalid("option mtu=%s: not a number (want an MTU such as 1500, or 0 for the default)", v)
		}
		if m < 0 {
			return invalid("mtu %d is less than zero", m)
		}
	case "vlan":
		id, err := strconv.Atoi(v)
		if err != nil {
			return invalid("option vlan=%s: not a number (want a VLAN ID 0-4094)", v)
		}
		if id < 0 || id > 4094 {
			return invalid("vlan ID %d must be between 0 and 4094", id)
		}
	case network.OptMetric:
		if _, err := strconv.ParseUint(v, 10, 32); err != nil {
			return invalid("option metric=%s: want a route metric 0-4294967295", v)
		}
	case network.OptNoDefaultRoute, network.OptIsolate:
		return checkBoolOption(n, k, v)
	case network.OptMode:
		if !contains(driverModes[n.Driver], v) {
			return invalid("unknown %s mode %q (want %s)", n.Driver, v, strings.Join(driverModes[n.Driver], ", "))
		}
	case network.OptVRF:
		if !network.ValidInterfaceName(v) {
			return invalid("option vrf=%s: want the name of a VRF device", v)
		}
	case "bclim":
		if _, err := strconv.ParseInt(v, 10, 32); err != nil {
			return invalid("option bclim=%s: want a number (-1 disables broadcast queueing)", v)
		}
	case "parent":
		if !network.ValidInterfaceName(v) {
			return invalid("option parent=%s: not a valid interface name", v)
		}
	}
	return nil
}

// checkBoolOption checks no_default_route (a boolean) or isolate (a
// boolean or "strict") and writes a boolean in canonical form.
func checkBoolOption(n *network.Network, k, v string) error {
	if k == network.OptIsolate && v == "strict" {
		return nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		if k == network.OptIsolate {
			return invalid("option isolate=%s: want true, false or strict", v)
		}
		return invalid("option no_default_route=%s: want true or false", v)
	}
	n.Options[k] = strconv.FormatBool(b)
	return nil
}

// foldOptionAliases moves Docker's bridge name and MTU options and
// parent= to where berth keeps them, and drops an empty option map.
func foldOptionAliases(n *network.Network) error {
	if v, ok := n.Options["com.docker.network.bridge.name"]; ok {
		if n.NetworkInterface == "" {
			n.NetworkInterface = v
		}
		delete(n.Options, "com.docker.network.bridge.name")
	}
	if v, ok := n.Options["com.docker.network.driver.mtu"]; ok {
		n.Options[network.OptMTU] = v
		delete(n.Options, "com.docker.network.driver.mtu")
	}
	if p, ok := n.Options["parent"]; ok {
		if n.NetworkInterface != "" && n.NetworkInterface != p {
			return invalid("parent %s and interface name %s disagree: give one of -o parent= and --interface-name", p, n.NetworkInterface)
		}
		n.NetworkInterface = p
		delete(n.Options, "parent")
	}
	if len(n.Options) == 0 {
		n.Options = nil
	}
	return nil
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// FreeDeviceName returns the first prefixN (prefix "podman" by default,
// N from 0) that is neither a network name nor an interface in used.
func FreeDeviceName(used Used, prefix string) string {
	if prefix == "" {
		prefix = "podman"
	}
	taken := map[string]bool{}
	for _, i := range used.Interfaces {
		taken[i] = true
	}
	for i := 0; ; i++ {
		name := prefix + strconv.Itoa(i)
		if _, ok := used.Names[name]; !ok && !taken[name] {
			return name
		}
	}
}

func completeBridge(n *network.Network, used Used, opts Options, checkUsed bool) error {
	taken := map[string]bool{}
	for _, i := range used.Interfaces {
		taken[i] = true
	}
	if n.NetworkInterface == "" {
		n.NetworkInterface = FreeDeviceName(used, opts.DefaultInterfaceName)
	} else if taken[n.NetworkInterface] && !n.Unmanaged() && n.Options["vlan"] == "" {
		return invalid("bridge name %s already in use", n.NetworkInterface)
	}
	if n.IPAMOptions["driver"] == network.IPAMDHCP && !n.Unmanaged() {
		return invalid("dhcp ipam driver needs a bridge with -o mode=unmanaged (berth's bridges hand out addresses with host-local)")
	}
	if n.IPAMOptions["driver"] == network.IPAMNone || n.IPAMOptions["driver"] == network.IPAMDHCP {
		return nil
	}
	has4, has6 := false, false
	for _, s := range n.Subnets {
		if s.Subnet.Addr().Is4() {
			has4 = true
		} else {
			has6 = true
		}
	}
	usedSubnets := append([]netip.Prefix(nil), used.Subnets...)
	for _, s := range n.Subnets {
		usedSubnets = append(usedSubnets, s.Subnet)
	}
	// No subnet: one IPv4 subnet from the pools (and an IPv6 one with
	// --ipv6). With --ipv6, the missing family is added to given subnets.
	if len(n.Subnets) == 0 || (n.IPv6Enabled && !has4) {
		pools := opts.SubnetPools
		if len(pools) == 0 {
			pools = DefaultPools
		}
		s, err := FreeSubnet(pools, usedSubnets)
		if err != nil {
			return err
		}
		n.Subnets = append(n.Subnets, network.Subnet{Subnet: s})
		usedSubnets = append(usedSubnets, s)
	}
	if n.IPv6Enabled && !has6 {
		s, err := randomULA(usedSubnets)
		if err != nil {
			return err
		}
		n.Subnets = append(n.Subnets, network.Subnet{Subnet: s})
	}
	_ = checkUsed
	return nil
}

func completeSubnets(n *network.Network, addGateway, checkUsed bool, used []netip.Prefix) error {
	for i := range n.Subnets {
		s := &n.Subnets[i]
		if !s.Subnet.IsValid() {
			return invalid("subnet %d is missing", i)
		}
		s.Subnet = s.Subnet.Masked()
		if s.Subnet.Addr().Is6() {
			n.IPv6Enabled = true
		}
		if checkUsed {
			for _, u := range used {
				if Overlaps(s.Subnet, u) {
					return invalid("subnet %s is already used on the host or by another config", s.Subnet)
				}
			}
		}
		for j := 0; j < i; j++ {
			if Overlaps(s.Subnet, n.Subnets[j].Subnet) {
				return invalid("subnet %s overlaps subnet %s of the same network", s.Subnet, n.Subnets[j].Subnet)
			}
		}
		if s.Gateway.IsValid() {
			if !s.Subnet.Contains(s.Gateway) {
				return invalid("gateway %s not in subnet %s", s.Gateway, s.Subnet)
			}
		} else if addGateway && s.Subnet.Bits() < s.Subnet.Addr().BitLen()-1 {
			s.Gateway = s.Subnet.Addr().Next()
		}
		if lr := s.LeaseRange; lr != nil {
			if lr.StartIP.IsValid() && !s.Subnet.Contains(lr.StartIP) {
				return invalid("lease range start ip %s not in subnet %s", lr.StartIP, s.Subnet)
			}
			if lr.EndIP.IsValid() && !s.Subnet.Contains(lr.EndIP) {
				return invalid("lease range end ip %s not in subnet %s", lr.EndIP, s.Subnet)
			}
			if lr.StartIP.IsValid() && lr.EndIP.IsValid() && lr.EndIP.Less(lr.StartIP) {
				return invalid("lease range %s-%s: the end comes before the start", lr.StartIP, lr.EndIP)
			}
		}
	}
	return nil
}

// Overlaps reports whether two prefixes share an address.
func Overlaps(a, b netip.Prefix) bool {
	return a.Masked().Overlaps(b.Masked())
}

// FreeSubnet returns the first block of the pools that overlaps nothing used.
func FreeSubnet(pools []SubnetPool, used []netip.Prefix) (netip.Prefix, error) {
	for _, p := range pools {
		base := p.Base.Masked()
		if p.Size < base.Bits() || p.Size > base.Addr().BitLen() {
			continue
		}
		step := new(big.Int).Lsh(big.NewInt(1), uint(base.Addr().BitLen()-p.Size))
		cur := new(big.Int).SetBytes(base.Addr().AsSlice())
		count := new(big.Int).Lsh(big.NewInt(1), uint(p.Size-base.Bits()))
		for i := new(big.Int); i.Cmp(count) < 0; i.Add(i, big.NewInt(1)) {
			b := cur.FillBytes(make([]byte, base.Addr().BitLen()/8))
			a, _ := netip.AddrFromSlice(b)
			cand := netip.PrefixFrom(a, p.Size)
			free := true
			for _, u := range used {
				if Overlaps(cand, u) {
					free = false
					break
				}
			}
			if free {
				return cand, nil
			}
			cur.Add(cur, step)
		}
	}
	return netip.Prefix{}, ErrNoFreeSubnet
}

func randomULA(used []netip.Prefix) (netip.Prefix, error) {
	for i := 0; i < 100; i++ {
		b := make([]byte, 16)
		_, _ = rand.Read(b[1:8])
		b[0] = 0xfd
		for j := 8; j < 16; j++ {
			b[j] = 0
		}
		a, _ := netip.AddrFromSlice(b)
		p := netip.PrefixFrom(a, 64)
		ok := true
		for _, u := range used {
			if Overlaps(p, u) {
				ok = false
			}
		}
		if ok {
			return p, nil
		}
	}
	return netip.Prefix{}, errors.New("could not find a free IPv6 subnet")
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

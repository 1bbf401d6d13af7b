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
	"math/big"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/berthnet/berth/internal/network"
)

// ErrExists is returned when a network name or ID is taken.
var ErrExists = errors.New("network already exists")

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

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), network.ErrInvalid)
}

// Complete validates n and fills in what was left out. now is the creation
// time to record.
func Complete(n network.Network, used Used, opts Options, now time.Time) (network.Network, error) {
	if !nameRE.MatchString(n.Name) {
		return n, invalid("network name %s invalid: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*", n.Name)
	}
	if _, ok := used.Names[n.Name]; ok {
		return n, fmt.Errorf("network name %s already used: %w", n.Name, ErrExists)
	}
	if n.ID == "" {
		n.ID = randomID()
	} else {
		if len(n.ID) != 64 || !isHex(n.ID) {
			return n, invalid("network id %q must be 64 hexadecimal characters", n.ID)
		}
		for name, id := range used.Names {
			if id == n.ID {
				return n, fmt.Errorf("network id %s already used by network %s: %w", network.ShortID(n.ID), name, ErrExists)
			}
		}
	}
	if n.Driver == "" {
		n.Driver = network.DriverBridge
	}
	if n.NetworkInterface != "" && !network.ValidInterfaceName(n.NetworkInterface) {
		return n, invalid("interface name %q: 1-15 characters, no '/', ':' or spaces", n.NetworkInterface)
	}
	if n.IPAMOptions == nil {
		n.IPAMOptions = map[string]string{}
	}
	ipam := n.IPAMOptions["driver"]
	switch ipam {
	case "", network.IPAMHostLocal, network.IPAMDHCP, network.IPAMNone:
	default:
		return n, invalid("unsupported ipam driver %q (want host-local, dhcp or none)", ipam)
	}
	if ipam == network.IPAMNone && len(n.Subnets) > 0 {
		return n, invalid("none ipam driver is set but subnets are given")
	}
	if err := normaliseOptions(&n); err != nil {
		return n, err
	}
	checkUsed := opts.CheckUsedSubnets
	switch n.Driver {
	case network.DriverBridge:
		if n.Unmanaged() {
			checkUsed = false
		}
		if err := completeBridge(&n, used, opts, checkUsed); err != nil {
			return n, err
		}
	case network.DriverMacvlan, network.DriverIPvlan:
		checkUsed = false
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
				return n, invalid("%s driver needs at least one subnet specified when the host-local ipam driver is set", n.Driver)
			}
		case network.IPAMDHCP:
			if len(n.Subnets) > 0 {
				return n, invalid("ipam driver dhcp set but subnets are set")
			}
			if n.Driver == network.DriverIPvlan {
				return n, invalid("ipam driver dhcp is not supported with ipvlan")
			}
		}
		// DNS is not served on macvlan networks.
		n.DNSEnabled = false
	default:
		return n, invalid("unsupported driver %q (want bridge, macvlan or ipvlan)", n.Driver)
	}
	if n.IPAMOptions["driver"] == "" {
		n.IPAMOptions["driver"] = network.IPAMHostLocal
	}
	if n.IPAMOptions["driver"] == network.IPAMNone {
		n.DNSEnabled = false
	}
	if len(n.NetworkDNSServers) > 0 && !n.DNSEnabled {
		return n, invalid("cannot set network_dns_servers if DNS is not enabled for the network")
	}
	addGateway := !n.Internal || n.DNSEnabled
	if err := completeSubnets(&n, addGateway, checkUsed, used.Subnets); err != nil {
		return n, err
	}
	for i, r := range n.Routes {
		if !r.Destination.IsValid() || r.Destination.Masked() != r.Destination {
			return n, invalid("route %d: destination %s must be a network address", i, r.Destination)
		}
	}
	if err := n.Validate(); err != nil {
		return n, err
	}
	n.Created = now.UTC().Format(time.RFC3339Nano)
	return n, nil
}

func normaliseOptions(n *network.Network) error {
	for k, v := range n.Options {
		switch k {
		case network.OptMTU:
			m, err := strconv.Atoi(v)
			if err != nil || m < 0 {
				return invalid("option mtu %q: want a number ≥ 0", v)
			}
		case network.OptMetric:
			if _, err := strconv.ParseUint(v, 10, 32); err != nil {
				return invalid("option metric %q: want 0-4294967295", v)
			}
		case network.OptNoDefaultRoute:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return invalid("option no_default_route %q: want true or false", v)
			}
			n.Options[k] = strconv.FormatBool(b)
		case network.OptIsolate:
			if n.Driver != network.DriverBridge {
				return invalid("unsupported %s network option isolate", n.Driver)
			}
			if v != "strict" {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return invalid("option isolate %q: want true, false or strict", v)
				}
				n.Options[k] = strconv.FormatBool(b)
			}
		case network.OptMode, network.OptVRF, "vlan", "bclim", "parent":
		case "com.docker.network.bridge.name":
			if n.NetworkInterface == "" {
				n.NetworkInterface = v
			}
			delete(n.Options, k)
		case "com.docker.network.driver.mtu":
			n.Options[network.OptMTU] = v
			delete(n.Options, k)
		default:
			return invalid("unsupported %s network option %s", n.Driver, k)
		}
	}
	if p := n.Options["parent"]; p != "" {
		if n.Driver == network.DriverBridge {
			return invalid("unsupported bridge network option parent")
		}
		n.NetworkInterface = p
		delete(n.Options, "parent")
	}
	return nil
}

func completeBridge(n *network.Network, used Used, opts Options, checkUsed bool) error {
	prefix := opts.DefaultInterfaceName
	if prefix == "" {
		prefix = "podman"
	}
	taken := map[string]bool{}
	for _, i := range used.Interfaces {
		taken[i] = true
	}
	if n.NetworkInterface == "" {
		for i := 0; i < 1<<16; i++ {
			name := prefix + strconv.Itoa(i)
			if !taken[name] {
				n.NetworkInterface = name
				break
			}
		}
	} else if taken[n.NetworkInterface] && !n.Unmanaged() && n.Options["vlan"] == "" {
		return invalid("bridge name %s already in use", n.NetworkInterface)
	}
	if n.IPAMOptions["driver"] == network.IPAMDHCP && !n.Unmanaged() {
		return invalid("dhcp ipam driver needs a bridge with mode=unmanaged")
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
	if !has4 && !(has6 && n.IPv6Enabled) {
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
			return invalid("subnet %d: missing", i)
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
		} else if addGateway && n.Driver == network.DriverBridge && s.Subnet.Bits() < s.Subnet.Addr().BitLen()-1 {
			s.Gateway = s.Subnet.Addr().Next()
		}
		if lr := s.LeaseRange; lr != nil {
			for _, a := range []netip.Addr{lr.StartIP, lr.EndIP} {
				if a.IsValid() && !s.Subnet.Contains(a) {
					return invalid("lease range ip %s not in subnet %s", a, s.Subnet)
				}
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
	return netip.Prefix{}, errors.New("could not find free subnet from subnet pools")
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

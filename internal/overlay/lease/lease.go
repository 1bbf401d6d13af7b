// Package lease is the pure half of berth's multi-host overlay: the
// network configuration every host shares, the subnet leases hosts claim in
// etcd (keys and flannel-compatible values), the choice of a free subnet, and
// the plan that turns the remote leases into the VXLAN forwarding entries,
// neighbour entries and routes a host must hold. It does no I/O, so all of it
// is tested without root, etcd or a kernel.
//
// Layout in etcd under a prefix (default /berth/overlay/<network>):
//
//	<prefix>/config                 Config as JSON, written once (first writer wins)
//	<prefix>/subnets/198.19.3.0-24  Lease value as JSON, attached to the host's etcd lease
package lease

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ErrInvalid marks bad configuration or lease data.
var ErrInvalid = errors.New("invalid overlay data")

// Config is the overlay network every host of it agrees on.
type Config struct {
	// Network is the range hosts carve their subnets from (198.19.0.0/16).
	Network netip.Prefix `json:"Network"`
	// SubnetLen is the prefix length of one host's subnet (24).
	SubnetLen int `json:"SubnetLen"`
	// VNI is the VXLAN network identifier.
	VNI int `json:"VNI"`
	// Port is the VXLAN UDP port (4789).
	Port int `json:"Port"`
}

// Validate checks the configuration and names the field at fault.
func (c Config) Validate() error {
	if !c.Network.IsValid() || !c.Network.Addr().Is4() {
		return fmt.Errorf("network %v: want an IPv4 range such as 198.19.0.0/16: %w", c.Network, ErrInvalid)
	}
	if c.Network != c.Network.Masked() {
		return fmt.Errorf("network %s has host bits set (want %s): %w", c.Network, c.Network.Masked(), ErrInvalid)
	}
	if c.SubnetLen <= c.Network.Bits() || c.SubnetLen > 30 {
		return fmt.Errorf("subnet length /%d: want a length between /%d and /30: %w", c.SubnetLen, c.Network.Bits()+1, ErrInvalid)
	}
	if c.SubnetLen-c.Network.Bits() > 16 {
		return fmt.Errorf("subnet length /%d: at most 65536 subnets per network (/%d or shorter): %w", c.SubnetLen, c.Network.Bits()+16, ErrInvalid)
	}
	if c.VNI < 1 || c.VNI > 1<<24-1 {
		return fmt.Errorf("vni %d: want 1 to 16777215: %w", c.VNI, ErrInvalid)
	}
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("port %d: want a UDP port 1 to 65535: %w", c.Port, ErrInvalid)
	}
	return nil
}

// Subnets returns how many host subnets the network holds.
func (c Config) Subnets() int { return 1 << (c.SubnetLen - c.Network.Bits()) }

// Subnet returns the i-th host subnet of the network.
func (c Config) Subnet(i int) netip.Prefix {
	base := c.Network.Addr().As4()
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	v += uint32(i) << (32 - c.SubnetLen)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), c.SubnetLen)
}

// Contains reports whether s is one of the network's host subnets.
func (c Config) Contains(s netip.Prefix) bool {
	return s.Bits() == c.SubnetLen && s == s.Masked() && c.Network.Contains(s.Addr())
}

// Lease is one host's claim on a subnet: where its VXLAN endpoint is.
// The JSON is flannel's subnet lease value (vxlan backend).
type Lease struct {
	Subnet   netip.Prefix `json:"-"`
	PublicIP netip.Addr   `json:"PublicIP"`
	// BackendType is always "vxlan".
	BackendType string      `json:"BackendType"`
	BackendData BackendData `json:"BackendData"`
	// Host names the host that holds the lease (informational).
	Host string `json:"Host,omitempty"`
}

// BackendData is the VXLAN part of a lease.
type BackendData struct {
	VNI     int    `json:"VNI"`
	VtepMAC string `json:"VtepMAC"`
}

// MAC returns the lease's VTEP MAC address.
func (l Lease) MAC() (net.HardwareAddr, error) {
	m, err := net.ParseMAC(l.BackendData.VtepMAC)
	if err != nil || len(m) != 6 {
		return nil, fmt.Errorf("lease %s: VtepMAC %q is not an Ethernet address: %w", l.Subnet, l.BackendData.VtepMAC, ErrInvalid)
	}
	return m, nil
}

// Encode returns the lease value stored in etcd.
func (l Lease) Encode() string {
	l.BackendType = "vxlan"
	b, _ := json.Marshal(l)
	return string(b)
}

// SubnetsDir is the key directory of the leases under a prefix.
func SubnetsDir(prefix string) string { return strings.TrimSuffix(prefix, "/") + "/subnets/" }

// ConfigKey is the key of the network's configuration under a prefix.
func ConfigKey(prefix string) string { return strings.TrimSuffix(prefix, "/") + "/config" }

// Key returns the etcd key of a subnet's lease (flannel's form: the slash of
// the CIDR becomes a dash).
func Key(prefix string, s netip.Prefix) string {
	return SubnetsDir(prefix) + s.Addr().String() + "-" + fmt.Sprint(s.Bits())
}

// ParseKey returns the subnet a lease key names.
func ParseKey(prefix, key string) (netip.Prefix, error) {
	rest, ok := strings.CutPrefix(key, SubnetsDir(prefix))
	if !ok {
		return netip.Prefix{}, fmt.Errorf("key %q is not under %s: %w", key, SubnetsDir(prefix), ErrInvalid)
	}
	i := strings.LastIndexByte(rest, '-')
	if i < 0 {
		return netip.Prefix{}, fmt.Errorf("key %q: want ADDR-LEN: %w", key, ErrInvalid)
	}
	p, err := netip.ParsePrefix(rest[:i] + "/" + rest[i+1:])
	if err != nil || p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("key %q: want ADDR-LEN of a subnet: %w", key, ErrInvalid)
	}
	return p, nil
}

// Decode parses a lease from its key and value and checks it.
func Decode(prefix, key string, value []byte) (Lease, error) {
	s, err := ParseKey(prefix, key)
	if err != nil {
		return Lease{}, err
	}
	var l Lease
	if err := json.Unmarshal(value, &l); err != nil {
		return Lease{}, fmt.Errorf("lease %s: %v: %w", s, err, ErrInvalid)
	}
	l.Subnet = s
	if !l.PublicIP.Is4() {
		return Lease{}, fmt.Errorf("lease %s: PublicIP %v is not an IPv4 address: %w", s, l.PublicIP, ErrInvalid)
	}
	if _, err := l.MAC(); err != nil {
		return Lease{}, err
	}
	return l, nil
}

// Pick chooses the subnet a host should try to claim: want when it is set
// (an error if it is outside the network or taken), else the first subnet
// not in taken. The network address's first subnet is skipped when the
// network has more than one subnet, so the range's own address is never a
// host's subnet address.
func Pick(c Config, taken map[netip.Prefix]bool, want netip.Prefix) (netip.Prefix, error) {
	if want.IsValid() {
		if !c.Contains(want) {
			return netip.Prefix{}, fmt.Errorf("subnet %s is not a /%d subnet of %s: %w", want, c.SubnetLen, c.Network, ErrInvalid)
		}
		if taken[want] {
			return netip.Prefix{}, fmt.Errorf("subnet %s: %w", want, ErrTaken)
		}
		return want, nil
	}
	start := 0
	if c.Subnets() > 1 {
		start = 1
	}
	for i := start; i < c.Subnets(); i++ {
		if s := c.Subnet(i); !taken[s] {
			return s, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("all %d subnets of %s are leased: %w", c.Subnets()-start, c.Network, ErrExhausted)
}

// Errors of Pick and of claims.
var (
	// ErrTaken: another host holds the subnet.
	ErrTaken = errors.New("subnet is leased by another host")
	// ErrExhausted: no subnet is left.
	ErrExhausted = errors.New("no free subnet")
)

// Gateway returns the bridge address of a host subnet (its first address).
func Gateway(s netip.Prefix) netip.Addr { return s.Masked().Addr().Next() }

// VTEPAddr returns the address the VXLAN device carries (the subnet
// address, as /32): remote hosts route the subnet via it, on-link.
func VTEPAddr(s netip.Prefix) netip.Addr { return s.Masked().Addr() }

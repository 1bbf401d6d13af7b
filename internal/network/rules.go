package network

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Typed reasons for rejected input. Validation wraps them in a
// *FieldError, which names the field; their own text is berth's message.
// A front-end that must word an error another program's way (the netavark
// front-end words them as netavark does) reads their fields with
// errors.As, never the message text. Each unwraps to ErrInvalid.

// SubnetOverlapError: two subnets of one network share addresses; equal
// subnets are a duplicate (Duplicate).
type SubnetOverlapError struct{ First, Second netip.Prefix }

func (e *SubnetOverlapError) Error() string {
	if e.Duplicate() {
		return fmt.Sprintf("subnet %s is given twice", e.First)
	}
	return fmt.Sprintf("subnet %s overlaps subnet %s of the same network", e.Second, e.First)
}

// Duplicate reports whether the two subnets are the same.
func (e *SubnetOverlapError) Duplicate() bool { return e.First.Masked() == e.Second.Masked() }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *SubnetOverlapError) Unwrap() error { return ErrInvalid }

// SubnetSizeError: the subnet has no room for a gateway and a container;
// MaxBits is the longest prefix length that has.
type SubnetSizeError struct {
	Subnet  netip.Prefix
	MaxBits int
}

func (e *SubnetSizeError) Error() string {
	return fmt.Sprintf("%s has no room for a gateway and a container; want a prefix length of /%d or shorter", e.Subnet, e.MaxBits)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *SubnetSizeError) Unwrap() error { return ErrInvalid }

// UnmatchedIPError: a static address in none of the network's subnets.
// Want is the number of static addresses, Matched how many are in one.
type UnmatchedIPError struct {
	IP            netip.Addr
	Network       string
	Subnets       []Subnet
	Want, Matched int
}

func (e *UnmatchedIPError) Error() string {
	return fmt.Sprintf("%s is not in any subnet of network %s (%s)", e.IP, e.Network, subnetList(e.Subnets))
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *UnmatchedIPError) Unwrap() error { return ErrInvalid }

// DriverError: a network driver berth does not have.
type DriverError struct{ Driver string }

func (e *DriverError) Error() string {
	return fmt.Sprintf("unknown network driver %q (want bridge, macvlan or ipvlan)", e.Driver)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *DriverError) Unwrap() error { return ErrInvalid }

// ErrDHCPManagedBridge: the dhcp IPAM driver on a bridge berth manages,
// whose containers get their addresses from berth.
var ErrDHCPManagedBridge = errors.New("dhcp needs a macvlan network or a bridge with mode=unmanaged")

// IPAMDriverError: an IPAM driver berth does not know.
type IPAMDriverError struct{ Driver string }

func (e *IPAMDriverError) Error() string {
	return fmt.Sprintf("unknown IPAM driver %q (want host-local, dhcp or none)", e.Driver)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *IPAMDriverError) Unwrap() error { return ErrInvalid }

// HostIPError: a port mapping's host_ip is not an address.
type HostIPError struct {
	Value string
	Port  uint16
}

func (e *HostIPError) Error() string {
	return fmt.Sprintf("%q is not an IP address (leave it empty for all addresses)", e.Value)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *HostIPError) Unwrap() error { return ErrInvalid }

// OptionError: a driver option whose value is not valid. Err is the
// reason: a *strconv.NumError when the value is not a number,
// ErrOutOfRange when it is one outside Min..Max.
type OptionError struct {
	Key, Value string
	Min, Max   int
	Err        error
	// Want says what would be valid, for the message.
	Want string
}

// ErrOutOfRange: a number outside the range an option allows.
var ErrOutOfRange = errors.New("out of range")

func (e *OptionError) Error() string {
	return fmt.Sprintf("%q is not %s", e.Value, e.Want)
}

// Unwrap makes errors.Is work for ErrInvalid and the reason.
func (e *OptionError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

// Route problems, the Problem of a *RouteError.
var (
	ErrRouteNeedsGateway = errors.New("a unicast route needs a gateway")
	ErrRouteHasGateway   = errors.New("must not have a gateway")
	ErrRouteType         = errors.New("not a route type")
)

// RouteError: a static route that cannot be added.
type RouteError struct {
	Destination netip.Prefix
	Type        string
	Problem     error
}

func (e *RouteError) Error() string {
	switch e.Problem {
	case ErrRouteHasGateway:
		return fmt.Sprintf("a %s route must not have a gateway", e.Type)
	case ErrRouteType:
		return fmt.Sprintf("%q is not a route type (want unicast, blackhole, unreachable or prohibit)", e.Type)
	}
	return e.Problem.Error()
}

// Unwrap makes errors.Is work for ErrInvalid and the problem.
func (e *RouteError) Unwrap() []error { return []error{ErrInvalid, e.Problem} }

// RouteType returns the route's type, "unicast" when unset.
func (r Route) Type() string {
	if r.RouteType == "" {
		return "unicast"
	}
	return r.RouteType
}

// Reasons an alias cannot be a DNS name (CheckAlias).
var (
	ErrAliasEmpty = errors.New("an alias must not be empty")
	ErrAliasChars = errors.New("an alias must not contain spaces, commas or newlines")
)

// CheckAlias reports why s cannot be a container's DNS name on a network:
// the DNS server's records separate names by commas and spaces, and
// records by newlines.
func CheckAlias(s string) error {
	switch {
	case s == "":
		return ErrAliasEmpty
	case strings.ContainsAny(s, " ,\n\t"):
		return ErrAliasChars
	}
	return nil
}

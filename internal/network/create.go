package network

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
)

// Reasons a definition to be created is refused (CheckCreate).
var (
	ErrNameMissing     = errors.New("a network needs a name")
	ErrIDMissing       = errors.New("a network needs an ID")
	ErrIPAMNoneSubnets = errors.New("the none IPAM driver takes no subnets")
)

// NameError: a network name that does not match NameRule.
type NameError struct{ Name string }

func (e *NameError) Error() string {
	return fmt.Sprintf("network name %q is not valid: names must match %s", e.Name, NameRule)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *NameError) Unwrap() error { return ErrInvalid }

// NameTakenError: another network has the name.
type NameTakenError struct{ Name string }

func (e *NameTakenError) Error() string {
	return fmt.Sprintf("network name %s is already used", e.Name)
}

// IDError: a network ID that is not 64 hexadecimal characters.
type IDError struct{ ID string }

func (e *IDError) Error() string {
	return fmt.Sprintf("network id %q must be 64 hexadecimal characters", e.ID)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *IDError) Unwrap() error { return ErrInvalid }

// LeaseRangeError: a lease range bound outside its subnet.
type LeaseRangeError struct {
	Addr   netip.Addr
	Subnet netip.Prefix
	End    bool // the end of the range, else its start
}

func (e *LeaseRangeError) Error() string {
	return fmt.Sprintf("%s is not in subnet %s", e.Addr, e.Subnet)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *LeaseRangeError) Unwrap() error { return ErrInvalid }

// GatewayError: a subnet's gateway outside the subnet.
type GatewayError struct {
	Gateway netip.Addr
	Subnet  netip.Prefix
}

func (e *GatewayError) Error() string {
	return fmt.Sprintf("%s is not in subnet %s", e.Gateway, e.Subnet)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *GatewayError) Unwrap() error { return ErrInvalid }

// ErrRouteDestination: a route's destination is an address inside a
// network rather than the network's own address.
var ErrRouteDestination = errors.New("the destination must be a network address")

// CheckCreate checks a definition given whole (name and ID included) to
// be created, before anything is filled in, in the order netavark's
// create checks it: name and ID (a name in usedNames is taken), IPAM
// driver, options, subnets (overlaps, size, gateway, lease range),
// routes. The errors are typed (errors.As) and wrapped in *FieldError.
func (n *Network) CheckCreate(usedNames map[string]string) error {
	if err := n.checkIdentity(usedNames); err != nil {
		return err
	}
	f := "network " + n.Name
	if n.NetworkInterface != "" && !ValidInterfaceName(n.NetworkInterface) {
		return fieldErr(f+".network_interface", "%q is not a valid interface name (1-15 characters, no '/', ':' or spaces)", n.NetworkInterface)
	}
	switch d := n.IPAMOptions["driver"]; d {
	case "", IPAMHostLocal, IPAMDHCP:
	case IPAMNone:
		if len(n.Subnets) > 0 {
			return fieldCause(f+".subnets", ErrIPAMNoneSubnets)
		}
	default:
		return fieldCause(f+".ipam_options.driver", &IPAMDriverError{Driver: d})
	}
	// The options netavark parses at create (Docker's MTU name is an
	// alias of mtu).
	for _, o := range [][2]string{{OptMTU, OptMTU}, {"com.docker.network.driver.mtu", OptMTU}, {OptVLAN, OptVLAN}} {
		if v, ok := n.Options[o[0]]; ok {
			if err := n.validateOption(f+".options."+o[0], o[1], v); err != nil {
				return err
			}
		}
	}
	if err := n.validateSubnets(f, true); err != nil {
		return err
	}
	return n.checkNewRoutes(f)
}

// checkIdentity checks the name (set, valid, not in usedNames) and the
// ID (set, 64 hexadecimal characters).
func (n *Network) checkIdentity(usedNames map[string]string) error {
	switch {
	case n.Name == "":
		return fieldCause("name", ErrNameMissing)
	case !ValidName(n.Name):
		return fieldCause("name", &NameError{Name: n.Name})
	}
	if _, ok := usedNames[n.Name]; ok {
		return fieldCause("name", &NameTakenError{Name: n.Name})
	}
	if n.ID == "" {
		return fieldCause("id", ErrIDMissing)
	}
	if _, err := hex.DecodeString(n.ID); err != nil || len(n.ID) != 64 {
		return fieldCause("id", &IDError{ID: n.ID})
	}
	return nil
}

// checkNewRoutes checks each route's destination is a network address,
// then what validateRoutes checks.
func (n *Network) checkNewRoutes(f string) error {
	for i, r := range n.Routes {
		if r.Destination.IsValid() && r.Destination.Masked() != r.Destination {
			return fieldCause(fmt.Sprintf("%s.routes[%d].destination", f, i), &RouteError{Destination: r.Destination, Type: r.Type(), Problem: ErrRouteDestination})
		}
	}
	return n.validateRoutes(f)
}

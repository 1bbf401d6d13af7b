package netavark

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/network"
)

// wording returns the message of err as netavark 2.1 words it for the
// subcommand verb, where berth knows netavark's words: Podman shows these
// messages and scripts match them. The errors are told apart by type
// (errors.As, errors.Is), never by their text; anything else keeps
// berth's message.
func wording(verb string, err error) string {
	if m, ok := inputWording(err); ok {
		return m
	}
	if m, ok := modelWording(verb, err); ok {
		return m
	}
	if m, ok := setupWording(err); ok {
		return m
	}
	var ne *core.NetworkError
	if errors.As(err, &ne) {
		// netavark names no network in its messages.
		return wording(verb, ne.Err)
	}
	return err.Error()
}

// inputWording words failures to read the namespace path or the input.
func inputWording(err error) (string, bool) {
	var ns *namespaceError
	if errors.As(err, &ns) {
		return "invalid namespace path: " + ioWording(ns.err), true
	}
	if errors.Is(err, core.ErrNamespace) {
		return "invalid namespace path: " + ioWording(err), true
	}
	var in *inputError
	if !errors.As(err, &in) {
		return "", false
	}
	var ae *network.AddrError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(in.err, &ae):
		return "failed to load " + in.what + ": JSON Decoding error: invalid IP address syntax", true
	case errors.As(in.err, &se), errors.As(in.err, &te):
		return "failed to load " + in.what + ": JSON Decoding error: " + in.err.Error(), true
	}
	return "failed to load " + in.what + ": " + ioWording(in.err), true
}

// ioWording words a failed system call as Rust's io::Error prints it
// ("IO error: No such file or directory (os error 2)"); other errors keep
// their text.
func ioWording(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return "IO error: " + osError(errno)
	}
	return err.Error()
}

// osError is Rust's text for an errno: the C library's message and the
// number ("File exists (os error 17)"). Go's messages are the C
// library's with the first letter lower-cased.
func osError(errno syscall.Errno) string {
	msg := errno.Error()
	if r, n := utf8.DecodeRuneInString(msg); n > 0 {
		msg = string(unicode.ToUpper(r)) + msg[n:]
	}
	return fmt.Sprintf("%s (os error %d)", msg, int(errno))
}

// modelWording words the model's typed validation errors.
func modelWording(verb string, err error) (string, bool) {
	if m, ok := identityWording(err); ok {
		return m, true
	}
	if m, ok := subnetWording(err); ok {
		return m, true
	}
	var (
		drv  *network.DriverError
		ipam *network.IPAMDriverError
		hip  *network.HostIPError
		opt  *network.OptionError
		rt   *network.RouteError
	)
	switch {
	case errors.As(err, &drv):
		return fmt.Sprintf("unknown network driver %q", drv.Driver), true
	case errors.As(err, &ipam):
		if verb == "create" {
			return "Unsupported ipam driver: " + ipam.Driver, true
		}
		return "unsupported ipam driver " + ipam.Driver, true
	case errors.Is(err, network.ErrDHCPManagedBridge):
		return "cannot use dhcp ipam driver without using the option mode=unmanaged", true
	case errors.Is(err, network.ErrIPAMNoneSubnets):
		return "None ipam driver is set but subnets are given", true
	case errors.As(err, &hip):
		return fmt.Sprintf("invalid host ip %q provided for port %d", hip.Value, hip.Port), true
	case errors.As(err, &opt):
		return optionWording(opt), true
	case errors.As(err, &rt):
		return routeWording(rt), true
	}
	return "", false
}

// identityWording words errors in a network's name and ID.
func identityWording(err error) (string, bool) {
	var (
		name  *network.NameError
		taken *network.NameTakenError
		id    *network.IDError
	)
	switch {
	case errors.Is(err, network.ErrNameMissing):
		return "Network name must be supplied", true
	case errors.As(err, &name):
		return fmt.Sprintf("Invalid characters in network name %q: must match %s", name.Name, network.NameRule), true
	case errors.As(err, &taken):
		return "network already exists " + taken.Name, true
	case errors.Is(err, network.ErrIDMissing):
		return "Network id must be supplied", true
	case errors.As(err, &id):
		return fmt.Sprintf("Network id must be a hexadecimal string %q", id.ID), true
	}
	return "", false
}

// subnetWording words errors in subnets and static addresses.
func subnetWording(err error) (string, bool) {
	var (
		ov *network.SubnetOverlapError
		sz *network.SubnetSizeError
		um *network.UnmatchedIPError
		lr *network.LeaseRangeError
		gw *network.GatewayError
	)
	switch {
	case errors.As(err, &ov):
		if ov.Duplicate() {
			return fmt.Sprintf("duplicate subnet defined: %s", ov.First), true
		}
		return fmt.Sprintf("overlapping subnets: %s and %s", ov.First, ov.Second), true
	case errors.As(err, &sz) && sz.Subnet.Bits() >= gatewayLimit(sz.Subnet):
		return fmt.Sprintf("could not create gateway for subnet %s because it has a %d or greater subnet prefix", sz.Subnet, gatewayLimit(sz.Subnet)), true
	case errors.As(err, &um):
		return fmt.Sprintf("not all static IPs matched a subnet: expected %d, got %d", um.Want, um.Matched), true
	case errors.As(err, &gw):
		return fmt.Sprintf("gateway %s not in subnet %s", gw.Gateway, gw.Subnet), true
	case errors.As(err, &lr):
		bound := "start_ip"
		if lr.End {
			bound = "end_ip"
		}
		return fmt.Sprintf("lease range %s %s not in subnet %s", bound, lr.Addr, lr.Subnet), true
	}
	return "", false
}

// gatewayLimit is the prefix length from which netavark finds no room for
// a gateway: /31 for IPv4, /128 for IPv6 (berth's limit is lower, and
// keeps its own message between the two).
func gatewayLimit(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 31
	}
	return 128
}

// optionWording words a bad driver option: Rust's integer parse errors,
// and netavark's range message for vlan.
func optionWording(e *network.OptionError) string {
	if errors.Is(e.Err, network.ErrOutOfRange) {
		return fmt.Sprintf("%s must be between %d and %d", e.Key, e.Min, e.Max)
	}
	reason := "invalid digit found in string"
	switch {
	case e.Value == "":
		reason = "cannot parse integer from empty string"
	case errors.Is(e.Err, strconv.ErrRange):
		reason = "number too large to fit in target type"
	}
	return fmt.Sprintf("unable to parse %q: %s", e.Key, reason)
}

// routeWording words a bad static route.
func routeWording(e *network.RouteError) string {
	switch e.Problem {
	case network.ErrRouteNeedsGateway:
		return fmt.Sprintf("route %s requires a gateway for type unicast", e.Destination)
	case network.ErrRouteHasGateway:
		return fmt.Sprintf("route %s must not have a gateway for type %s", e.Destination, e.Type)
	case network.ErrRouteType:
		return fmt.Sprintf("invalid route type %q", e.Type)
	case network.ErrRouteDestination:
		return "route destination invalid"
	}
	return e.Error()
}

// setupWording words failures of setup's steps on the host.
func setupWording(err error) (string, bool) {
	var (
		ie  *network.InterfaceExistsError
		ba  *network.BridgeAddrError
		dns *network.DNSStartError
		sc  *network.SysctlWriteError
		ml  *network.MissingLinkError
		nd  *core.NoDNSAddressError
	)
	switch {
	case errors.As(err, &ie) && ie.HostName != "":
		return fmt.Sprintf("create veth pair: interface %s already exists on container namespace or %s exists on host namespace: Netlink error: %s", ie.Name, ie.HostName, osError(syscall.EEXIST)), true
	case errors.As(err, &ie):
		return fmt.Sprintf("create veth pair: interface %s already exists on container namespace: Netlink error: %s", ie.Name, osError(syscall.EEXIST)), true
	case errors.As(err, &ba) && ba.Addr.Addr().Is6() && errors.Is(ba.Err, syscall.EACCES):
		return "add ip addr to bridge: failed to add ipv6 address, is ipv6 enabled in the kernel?: Netlink error: " + osError(syscall.EACCES), true
	case errors.As(err, &ml) && ml.Role == "vrf":
		return "get vrf to set up bridge interface: Netlink error: " + osError(syscall.ENODEV), true
	case errors.As(err, &ml) && ml.Role == "bridge":
		return "in unmanaged mode, the bridge must already exist on the host: Netlink error: " + osError(syscall.ENODEV), true
	case errors.As(err, &nd):
		return "bridge '" + nd.Bridge + "' in unmanaged mode has no usable IP addresses. Aardvark-dns requires at least one address (should not be an IPv6 link-local address) to bind to. Please add an IP address or disable DNS for this network (--disable-dns).", true
	case errors.As(err, &sc):
		return fmt.Sprintf("set sysctl %s: %s", strings.ReplaceAll(sc.Key, ".", "/"), ioWording(sc.Err)), true
	case errors.As(err, &dns):
		if dns.Stderr == "" {
			return "error while applying dns entries: aardvark-dns exited unexpectedly without error message", true
		}
		return "error while applying dns entries: aardvark-dns failed to start: " + dns.Stderr, true
	}
	return "", false
}

// aliasReason is netavark's reason for ignoring an alias.
func aliasReason(err error) string {
	if errors.Is(err, network.ErrAliasEmpty) {
		return "name is empty"
	}
	return "name contains invalid chars"
}

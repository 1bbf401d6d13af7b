package withdhcp

import (
	"errors"

	"github.com/berthnet/berth/internal/dhcpproxy"
)

// proxyWording returns the message of a failed proxy call as netavark
// 2.1's proxy words it, where berth knows netavark's words (Podman shows
// them, netavark's tests match them). Errors are told apart by type; any
// other keeps berth's message.
func proxyWording(err error) string {
	var me *dhcpproxy.MACError
	if errors.As(err, &me) {
		return macWording(me)
	}
	var ie *dhcpproxy.InterfaceError
	if errors.As(err, &ie) && ie.Missing() {
		// netavark asks the kernel for the link by name (an empty name
		// too) and reports the netlink error.
		return "Netlink error: No such device (os error 19)"
	}
	return err.Error()
}

// macWording is netavark's message for a MAC address it cannot parse: it
// reads each octet with Rust's u8::from_str_radix and reports that
// function's error.
func macWording(e *dhcpproxy.MACError) string {
	var why string
	switch e.Reason {
	case dhcpproxy.MACWrongLength:
		return "invalid mac length for address: " + e.Input
	case dhcpproxy.MACEmptyOctet:
		why = "cannot parse integer from empty string"
	case dhcpproxy.MACInvalidDigit:
		why = "invalid digit found in string"
	case dhcpproxy.MACOctetTooLarge:
		why = "number too large to fit in target type"
	default:
		return e.Error()
	}
	return "unable to parse mac address " + e.Input + ": " + why
}

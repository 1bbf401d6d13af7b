package dhcpproxy

import (
	"fmt"
	"net"
)

// MACReason says why a container_mac_addr is not a MAC address.
type MACReason int

// The ways a MAC address can be malformed, in the order the parser meets
// them: an octet is empty, holds a non-hex digit or exceeds 0xff, or the
// address does not have six octets.
const (
	MACEmptyOctet MACReason = iota + 1
	MACInvalidDigit
	MACOctetTooLarge
	MACWrongLength
)

// MACError is a container_mac_addr the proxy refuses. Input is the text
// as given.
type MACError struct {
	Input  string
	Reason MACReason
}

// Error describes the malformed address.
func (e *MACError) Error() string {
	what := map[MACReason]string{
		MACEmptyOctet:    "an octet is empty",
		MACInvalidDigit:  "an octet holds a non-hex digit",
		MACOctetTooLarge: "an octet exceeds ff",
		MACWrongLength:   "not six octets",
	}[e.Reason]
	return fmt.Sprintf("container_mac_addr %q: %s", e.Input, what)
}

// ParseMAC reads a container MAC address as netavark does: six octets of
// hex digits separated by ':' or '-' (mixed separators and one-digit or
// zero-padded octets are accepted; an octet may carry a leading '+').
// An empty string is refused like any malformed address.
func ParseMAC(s string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	for _, p := range splitMAC(s) {
		b, reason := parseOctet(p)
		if reason != 0 {
			return nil, &MACError{Input: s, Reason: reason}
		}
		mac = append(mac, b)
	}
	if len(mac) != 6 {
		return nil, &MACError{Input: s, Reason: MACWrongLength}
	}
	return mac, nil
}

// splitMAC splits at every ':' and '-', keeping empty parts.
func splitMAC(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == ':' || s[i] == '-' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// parseOctet reads one octet as hex, digit by digit, reporting the first
// problem met.
func parseOctet(p string) (byte, MACReason) {
	if p == "" {
		return 0, MACEmptyOctet
	}
	if p[0] == '+' {
		if len(p) == 1 {
			return 0, MACInvalidDigit
		}
		p = p[1:]
	}
	v := 0
	for i := 0; i < len(p); i++ {
		d, ok := hexDigit(p[i])
		if !ok {
			return 0, MACInvalidDigit
		}
		v = v*16 + d
		if v > 0xff {
			return 0, MACOctetTooLarge
		}
	}
	return byte(v), 0
}

func hexDigit(c byte) (int, bool) {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0'), true
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}

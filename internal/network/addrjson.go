package network

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// The addresses and subnets of a network definition decode with a typed
// error (*AddrError, naming the field) instead of net/netip's text, so a
// front-end can tell a bad address from other bad input.

// parseAddrField parses an address given as field; "" is the zero Addr.
func parseAddrField(field, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, &AddrError{Value: s, Field: field}
	}
	return a, nil
}

// parsePrefixField parses a subnet given as field; "" is the zero Prefix.
func parsePrefixField(field, s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, &AddrError{Value: s, Field: field, Subnet: true}
	}
	return p, nil
}

// UnmarshalJSON implements json.Unmarshaler with typed address errors.
func (s *Subnet) UnmarshalJSON(b []byte) error {
	var raw struct {
		Subnet     string      `json:"subnet"`
		Gateway    string      `json:"gateway"`
		LeaseRange *LeaseRange `json:"lease_range"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	var err error
	if s.Subnet, err = parsePrefixField("subnet", raw.Subnet); err != nil {
		return err
	}
	if s.Gateway, err = parseAddrField("gateway", raw.Gateway); err != nil {
		return err
	}
	s.LeaseRange = raw.LeaseRange
	return nil
}

// UnmarshalJSON implements json.Unmarshaler with typed address errors.
func (l *LeaseRange) UnmarshalJSON(b []byte) error {
	var raw struct {
		StartIP string `json:"start_ip"`
		EndIP   string `json:"end_ip"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	var err error
	if l.StartIP, err = parseAddrField("lease_range.start_ip", raw.StartIP); err != nil {
		return err
	}
	l.EndIP, err = parseAddrField("lease_range.end_ip", raw.EndIP)
	return err
}

// UnmarshalJSON implements json.Unmarshaler with typed address errors.
func (r *Route) UnmarshalJSON(b []byte) error {
	var raw struct {
		Destination string  `json:"destination"`
		Gateway     string  `json:"gateway"`
		Metric      *uint32 `json:"metric"`
		RouteType   string  `json:"route_type"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	var err error
	if r.Destination, err = parsePrefixField("destination", raw.Destination); err != nil {
		return err
	}
	if r.Gateway, err = parseAddrField("gateway", raw.Gateway); err != nil {
		return err
	}
	r.Metric, r.RouteType = raw.Metric, raw.RouteType
	return nil
}

// UnmarshalJSON implements json.Unmarshaler with typed address errors
// for network_dns_servers (subnets and routes have their own).
func (n *Network) UnmarshalJSON(b []byte) error {
	type plain Network
	aux := struct {
		*plain
		NetworkDNSServers []string `json:"network_dns_servers"`
	}{plain: (*plain)(n)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	n.NetworkDNSServers = nil
	for i, v := range aux.NetworkDNSServers {
		a, err := parseAddrField(fmt.Sprintf("network_dns_servers[%d]", i), v)
		if err != nil {
			return err
		}
		n.NetworkDNSServers = append(n.NetworkDNSServers, a)
	}
	return nil
}

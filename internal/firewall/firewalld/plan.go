package firewalld

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/network"
)

// portRules are the policy entries that publish one container's ports:
// forward ports and rich rules of PolicyPorts, rich rules of PolicyLocal.
type portRules struct {
	forward []ForwardPort
	rich    []string
	local   []string
}

// planPorts turns a container's published ports into firewalld entries,
// as netavark's firewalld driver does: a port on every address is a
// forward port per family the container has (and, for IPv4, a rule for
// 127.0.0.1); a port on one address is a rich rule for that address; one
// on 127.0.0.1 is only the local rule; ::1 is not forwarded (the kernel
// does not DNAT IPv6 loopback).
func planPorts(pf firewall.PortForward) (portRules, error) {
	var r portRules
	for _, m := range pf.Mappings {
		proto := network.NormalizeProtocol(m.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		host, ctr := portSpan(m.HostPort, m.Ports()), portSpan(m.ContainerPort, m.Ports())
		switch m.HostIP {
		case "", "0.0.0.0", "::":
			if pf.IPv4.IsValid() && m.HostIP != "::" {
				r.forward = append(r.forward, ForwardPort{Port: host, Protocol: proto, ToPort: ctr, ToAddr: pf.IPv4.String()})
				r.local = append(r.local, richRule(netip.AddrFrom4([4]byte{127, 0, 0, 1}), host, proto, ctr, pf.IPv4))
			}
			if pf.IPv6.IsValid() && m.HostIP != "0.0.0.0" {
				r.forward = append(r.forward, ForwardPort{Port: host, Protocol: proto, ToPort: ctr, ToAddr: pf.IPv6.String()})
			}
			continue
		}
		ip, err := netip.ParseAddr(m.HostIP)
		if err != nil {
			return portRules{}, fmt.Errorf("invalid host ip %q provided for port %d", m.HostIP, m.HostPort)
		}
		ip = ip.Unmap()
		switch {
		case ip == netip.AddrFrom4([4]byte{127, 0, 0, 1}):
			if pf.IPv4.IsValid() {
				r.local = append(r.local, richRule(ip, host, proto, ctr, pf.IPv4))
			}
		case ip == netip.IPv6Loopback():
		case ip.Is4() && pf.IPv4.IsValid():
			r.rich = append(r.rich, richRule(ip, host, proto, ctr, pf.IPv4))
		case ip.Is6() && pf.IPv6.IsValid():
			r.rich = append(r.rich, richRule(ip, host, proto, ctr, pf.IPv6))
		}
	}
	return r, nil
}

// dnsRules are the rich rules that redirect DNS queries to a network's
// gateways to the DNS server's port, when it is not 53.
func dnsRules(n firewall.NetworkRules) []string {
	if n.DNSPort == 0 || n.DNSPort == 53 {
		return nil
	}
	out := make([]string, 0, len(n.Gateways))
	for _, gw := range n.Gateways {
		out = append(out, richRule(gw, "53", "udp", strconv.Itoa(int(n.DNSPort)), gw))
	}
	return out
}

// portSpan is a port or, for a range of more than one port, "first-last".
func portSpan(first uint16, n int) string {
	if n <= 1 {
		return strconv.Itoa(int(first))
	}
	return fmt.Sprintf("%d-%d", first, int(first)+n-1)
}

// richRule is a forward-port rich rule in the form firewalld prints it
// (so that rules read back compare equal to the ones made).
func richRule(dst netip.Addr, port, proto, toPort string, to netip.Addr) string {
	return fmt.Sprintf(`rule family="%s" destination address="%s" forward-port port="%s" protocol="%s" to-port="%s" to-addr="%s"`,
		family(dst), dst, port, proto, toPort, to)
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "ipv4"
	}
	return "ipv6"
}

// targets reports whether a rich rule forwards to one of addrs.
func targets(rule string, addrs []netip.Addr) bool {
	for _, a := range addrs {
		if a.IsValid() && strings.Contains(rule, fmt.Sprintf(`to-addr="%s"`, a)) {
			return true
		}
	}
	return false
}

// addUnique appends the entries of add that list does not hold yet.
func addUnique[T comparable](list, add []T) []T {
	out := slices.Clone(list)
	for _, x := range add {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// richForward is the part of a forward-port rich rule that decides a
// clash: the host side and the target address.
type richForward struct {
	family, dst, port, proto, toAddr string
}

// parseRich reads a forward-port rich rule; ok is false for other rules.
func parseRich(rule string) (richForward, bool) {
	kv := map[string]string{}
	for _, f := range strings.Fields(rule) {
		k, v, ok := strings.Cut(f, "=")
		if ok {
			kv[k] = strings.Trim(v, `"`)
		}
	}
	if !strings.Contains(rule, "forward-port") || kv["to-addr"] == "" {
		return richForward{}, false
	}
	return richForward{family: kv["family"], dst: kv["address"], port: kv["port"], proto: kv["protocol"], toAddr: kv["to-addr"]}, true
}

// spanOf parses "p" or "a-b".
func spanOf(s string) (lo, hi int, ok bool) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err := strconv.Atoi(a)
	if err != nil {
		return 0, 0, false
	}
	if !isRange {
		return lo, lo, true
	}
	hi, err = strconv.Atoi(b)
	return lo, hi, err == nil
}

func overlap(a, b string) bool {
	alo, ahi, ok1 := spanOf(a)
	blo, bhi, ok2 := spanOf(b)
	return ok1 && ok2 && alo <= bhi && blo <= ahi
}

func sameFamily(a, b string) bool {
	return strings.Contains(a, ":") == strings.Contains(b, ":")
}

// clash returns firewall.ErrPortInUse when an entry of add takes a host
// port that ports (PolicyPorts) or local (PolicyLocal) already forward to
// another address.
func clash(ports, local Rules, add portRules) error {
	for _, n := range add.forward {
		for _, h := range ports.ForwardPorts {
			if h.Protocol == n.Protocol && sameFamily(h.ToAddr, n.ToAddr) && h.ToAddr != n.ToAddr && overlap(h.Port, n.Port) {
				return fmt.Errorf("%w: host port %s/%s is already published to %s", firewall.ErrPortInUse, n.Port, n.Protocol, target(h.ToAddr, h.ToPort))
			}
		}
	}
	if err := clashRich(ports.RichRules, add.rich); err != nil {
		return err
	}
	return clashRich(local.RichRules, add.local)
}

func clashRich(have, add []string) error {
	for _, rule := range add {
		n, _ := parseRich(rule)
		for _, hr := range have {
			h, ok := parseRich(hr)
			if ok && h.family == n.family && h.dst == n.dst && h.proto == n.proto && h.toAddr != n.toAddr && overlap(h.port, n.port) {
				return fmt.Errorf("%w: host port %s:%s/%s is already published to %s", firewall.ErrPortInUse, n.dst, n.port, n.proto, h.toAddr)
			}
		}
	}
	return nil
}

func target(addr, port string) string {
	if strings.Contains(addr, ":") {
		return "[" + addr + "]:" + port
	}
	return addr + ":" + port
}

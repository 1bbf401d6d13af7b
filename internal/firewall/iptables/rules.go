package iptables

import (
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/network"
)

// Table and chain names of netavark 1.x's iptables driver.
const (
	tableFilter = "filter"
	tableNAT    = "nat"

	chainForward     = "FORWARD"
	chainPrerouting  = "PREROUTING"
	chainOutput      = "OUTPUT"
	chainPostrouting = "POSTROUTING"

	chainInput           = "INPUT"
	chainNetavarkForward = "NETAVARK_FORWARD"
	chainNetavarkInput   = "NETAVARK_INPUT"
	chainIsolation1      = "NETAVARK_ISOLATION_1"
	chainIsolation2      = "NETAVARK_ISOLATION_2"
	chainIsolation3      = "NETAVARK_ISOLATION_3"
	chainHostportDNAT    = "NETAVARK-HOSTPORT-DNAT"
	chainHostportSetmark = "NETAVARK-HOSTPORT-SETMARK"
	chainHostportMasq    = "NETAVARK-HOSTPORT-MASQ"

	// chainPrefix starts the name of every chain the driver creates.
	chainPrefix = "NETAVARK"

	forwardComment = "netavark firewall plugin rules"
	inputComment   = "netavark firewall rules" // netavark 2.x's text
	masqComment    = "netavark portfw masq mark"
	hostportMark   = "0x2000/0x2000"
)

// family is an address family: which of iptables and ip6tables a rule
// belongs to.
type family int

const (
	ipv4 family = iota
	ipv6
)

func (f family) String() string {
	if f == ipv6 {
		return "ipv6"
	}
	return "ipv4"
}

func (f family) has(a netip.Addr) bool { return a.IsValid() && a.Is4() == (f == ipv4) }

// localhost is the source address of connections from the host to itself.
func (f family) localhost() string {
	if f == ipv6 {
		return "::1/128"
	}
	return "127.0.0.1/32"
}

// multicast is the destination range that is never masqueraded.
func (f family) multicast() string {
	if f == ipv6 {
		return "ff00::/8"
	}
	return "224.0.0.0/4"
}

// outbound is the target of a network's outgoing traffic in family f:
// SNAT to its outbound address of that family (netavark 2.x), or
// MASQUERADE.
func (f family) outbound(n firewall.NetworkRules) string {
	a := n.OutboundAddr4
	if f == ipv6 {
		a = n.OutboundAddr6
	}
	if !a.IsValid() {
		return "MASQUERADE"
	}
	return "SNAT --to-source " + a.String()
}

// policy says when Teardown removes a rule.
type policy int

const (
	// keep: shared infrastructure, removed only by Reset.
	keep policy = iota
	// perNetwork: removed by a complete teardown of the network.
	perNetwork
	// whenTargetEmpty: removed by a complete teardown of the network, but
	// only once the chain it jumps to has no rules left.
	whenTargetEmpty
	// perContainer: removed when the container's ports are torn down.
	perContainer
)

// rule is one iptables rule, written exactly as iptables-save prints it, so
// that rules read back from the kernel compare equal to generated ones.
type rule struct {
	table string
	chain string
	spec  string // everything after "-A <chain> "
	// insert is the 1-based position the rule is inserted at when it is
	// missing; 0 appends it.
	insert int
	policy policy
}

// String renders the rule as an iptables-save line with its table, e.g.
// "nat -A POSTROUTING -j NETAVARK-HOSTPORT-MASQ".
func (r rule) String() string { return r.table + " -A " + r.chain + " " + r.spec }

// ChainHash returns the 13 upper-case hex digits netavark uses to name the
// chains of a network: the start of the SHA-512 of the network name.
func ChainHash(networkName string) string {
	sum := sha512.Sum512([]byte(networkName))
	return strings.ToUpper(hex.EncodeToString(sum[:]))[:13]
}

// networkChain is the nat chain that masquerades a network's traffic.
func networkChain(networkName string) string { return "NETAVARK-" + ChainHash(networkName) }

// dnatChain is the nat chain holding the DNAT rules of a network's
// published ports.
func dnatChain(networkName string) string { return "NETAVARK-DN-" + ChainHash(networkName) }

// prefixString prints a prefix as iptables-save does: masked, with its length.
func prefixString(p netip.Prefix) string { return p.Masked().String() }

// hostString prints a single address as iptables-save does: as a /32 or /128.
func hostString(a netip.Addr) string { return netip.PrefixFrom(a, a.BitLen()).String() }

// hostPortString prints a DNAT destination, with brackets around IPv6.
func hostPortString(a netip.Addr, port string) string {
	if a.Is6() {
		return "[" + a.String() + "]:" + port
	}
	return a.String() + ":" + port
}

// subnets returns the network's subnets of family f, masked.
func subnets(n firewall.NetworkRules, f family) []netip.Prefix {
	v4, v6 := firewall.SubnetsOf(n.Subnets)
	if f == ipv6 {
		return v6
	}
	return v4
}

// networkRules returns the rules of one network in family f, in the order
// netavark 1.x adds them, for each of its subnets of that family: the
// masquerade chain and its POSTROUTING jump, the FORWARD accept rules and the
// isolation rules. strict3 says whether NETAVARK_ISOLATION_3 is in use in
// this family (some network is isolate=strict); only then do networks that
// are not isolated get their DROP rule there, so a host without strict
// networks gets exactly netavark 1.4's layout.
func networkRules(n firewall.NetworkRules, f family, strict3 bool) []rule {
	var out []rule
	hash := networkChain(n.Name)
	for _, s := range subnets(n, f) {
		sub := prefixString(s)
		out = append(out,
			rule{table: tableNAT, chain: hash, spec: "-d " + sub + " -j ACCEPT", policy: perNetwork},
			rule{table: tableNAT, chain: hash, spec: "! -d " + f.multicast() + " -j " + f.outbound(n), policy: perNetwork},
			rule{table: tableNAT, chain: chainPostrouting, spec: "-s " + sub + " -j " + hash, policy: perNetwork},
		)
		pos := 1
		switch n.Isolation {
		case network.IsolateTrue, network.IsolateStrict:
			target := chainIsolation2
			if n.Isolation == network.IsolateStrict {
				target = chainIsolation3
			}
			out = append(out,
				rule{table: tableFilter, chain: chainForward, spec: "-j " + chainIsolation1, insert: 1, policy: whenTargetEmpty},
				rule{table: tableFilter, chain: chainIsolation1, spec: fmt.Sprintf("-i %s ! -o %s -j %s", n.Bridge, n.Bridge, target), insert: 1, policy: perNetwork},
				rule{table: tableFilter, chain: chainIsolation2, spec: "-o " + n.Bridge + " -j DROP", insert: 1, policy: perNetwork},
			)
			if n.Isolation == network.IsolateStrict || strict3 {
				out = append(out, rule{table: tableFilter, chain: chainIsolation3, spec: "-j " + chainIsolation2, policy: keep})
			}
			pos = 2
		default:
			if strict3 {
				out = append(out,
					rule{table: tableFilter, chain: chainIsolation3, spec: "-o " + n.Bridge + " -j DROP", insert: 1, policy: perNetwork},
					rule{table: tableFilter, chain: chainIsolation3, spec: "-j " + chainIsolation2, policy: keep},
				)
			}
		}
		out = append(out,
			rule{table: tableFilter, chain: chainForward, spec: `-m comment --comment "` + forwardComment + `" -j ` + chainNetavarkForward, insert: pos, policy: keep},
			rule{table: tableFilter, chain: chainNetavarkForward, spec: "-d " + sub + " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", policy: perNetwork},
			rule{table: tableFilter, chain: chainNetavarkForward, spec: "-s " + sub + " -j ACCEPT", policy: perNetwork},
		)
		out = append(out, inputRules(n, sub)...)
	}
	return out
}

// inputRules are the rules netavark 2.x added to netavark 1.x's layout: DNS
// queries from the subnet to the host's DNS port are accepted in
// NETAVARK_INPUT, which INPUT jumps to first, so containers keep their
// name resolution when the host's INPUT policy is DROP.
func inputRules(n firewall.NetworkRules, sub string) []rule {
	port := n.DNSPort
	if port == 0 {
		port = 53
	}
	return []rule{
		{table: tableFilter, chain: chainInput, spec: `-m comment --comment "` + inputComment + `" -j ` + chainNetavarkInput, insert: 1, policy: keep},
		{table: tableFilter, chain: chainNetavarkInput, spec: fmt.Sprintf("-s %s -p udp -m udp --dport %d -j ACCEPT", sub, port), policy: perNetwork},
	}
}

// hostportRules returns the shared port-forwarding rules (the same in both
// families), which every network setup makes sure of and only Reset removes.
func hostportRules() []rule {
	jump := "-m addrtype --dst-type LOCAL -j " + chainHostportDNAT
	return []rule{
		{table: tableNAT, chain: chainHostportSetmark, spec: "-j MARK --set-xmark " + hostportMark},
		{table: tableNAT, chain: chainHostportMasq, spec: `-m comment --comment "` + masqComment + `" -m mark --mark ` + hostportMark + " -j MASQUERADE"},
		{table: tableNAT, chain: chainPostrouting, spec: "-j " + chainHostportMasq, insert: 1},
		{table: tableNAT, chain: chainPrerouting, spec: jump},
		{table: tableNAT, chain: chainOutput, spec: jump},
	}
}

// dnsRules returns the rules that redirect DNS queries to a gateway's port 53
// to the port the DNS server listens on, for udp and tcp and each gateway of
// family f. A DNS port of 0 or 53 needs none.
func dnsRules(n firewall.NetworkRules, f family) []rule {
	if n.DNSPort == 0 || n.DNSPort == 53 {
		return nil
	}
	var out []rule
	for _, gw := range n.Gateways {
		if !f.has(gw) {
			continue
		}
		for _, proto := range []string{"udp", "tcp"} {
			out = append(out, rule{
				table: tableNAT,
				chain: chainHostportDNAT,
				spec: fmt.Sprintf("-d %s -p %s -m %s --dport 53 -j DNAT --to-destination %s",
					hostString(gw), proto, proto, hostPortString(gw, fmt.Sprint(n.DNSPort))),
				policy: perNetwork,
			})
		}
	}
	return out
}

// portMapping is one port mapping of a container in one family.
type portMapping struct {
	m      network.PortMapping
	hostIP netip.Addr // zero: every local address
}

// mappingsOf returns the mappings of pf that apply to family f, following
// the rules of firewall.PortForward.Expand: a mapping without host IP applies
// to every family the container has an address of, one with a host IP to
// that IP's family, and 0.0.0.0 or :: means every address of its family.
func mappingsOf(pf firewall.PortForward, f family) []portMapping {
	target := pf.IPv4
	if f == ipv6 {
		target = pf.IPv6
	}
	if !f.has(target) {
		return nil
	}
	var out []portMapping
	for _, m := range pf.Mappings {
		h, err := m.HostAddr()
		if err != nil {
			continue // rejected by PortMapping.Validate before it gets here
		}
		if h.IsValid() {
			if !f.has(h) {
				continue
			}
			if h.IsUnspecified() {
				h = netip.Addr{}
			}
		}
		out = append(out, portMapping{m: m, hostIP: h})
	}
	return out
}

// portRules returns the rules publishing the ports of pf in family f, as
// netavark 1.x writes them: for each mapping a jump from
// NETAVARK-HOSTPORT-DNAT into the network's NETAVARK-DN chain, and there the
// masquerade marks for hairpin traffic from the subnet and for localhost,
// then the DNAT itself. A range of ports stays one rule (--dport P1:P2).
// subnet is the container's subnet in family f; without it (zero) the
// hairpin rule is left out, which only Teardown uses.
func portRules(pf firewall.PortForward, f family, subnet netip.Prefix) []rule {
	target := pf.IPv4
	if f == ipv6 {
		target = pf.IPv6
	}
	dn := dnatChain(pf.NetworkName)
	comment := fmt.Sprintf(`-m comment --comment "dnat name: %s id: %s"`, pf.NetworkName, pf.ContainerID)
	var out []rule
	for _, pm := range mappingsOf(pf, f) {
		proto := network.NormalizeProtocol(pm.m.Protocol)
		n := pm.m.Ports()
		hostPorts := fmt.Sprint(pm.m.HostPort)
		ctrPorts := fmt.Sprint(pm.m.ContainerPort)
		if n > 1 {
			hostPorts = fmt.Sprintf("%d:%d", pm.m.HostPort, int(pm.m.HostPort)+n-1)
			ctrPorts = fmt.Sprintf("%d-%d/%d", pm.m.ContainerPort, int(pm.m.ContainerPort)+n-1, pm.m.HostPort)
		}
		dst := ""
		if pm.hostIP.IsValid() {
			dst = " -d " + hostString(pm.hostIP)
		}
		match := fmt.Sprintf(" -p %s -m %s --dport %s", proto, proto, hostPorts)
		out = append(out, rule{table: tableNAT, chain: chainHostportDNAT, spec: strings.TrimSpace(match) + " " + comment + " -j " + dn, policy: perContainer})
		if subnet.IsValid() {
			out = append(out, rule{table: tableNAT, chain: dn, spec: "-s " + prefixString(subnet) + dst + match + " -j " + chainHostportSetmark, policy: perContainer})
		}
		out = append(out,
			rule{table: tableNAT, chain: dn, spec: "-s " + f.localhost() + dst + match + " -j " + chainHostportSetmark, policy: perContainer},
			rule{table: tableNAT, chain: dn, spec: strings.TrimSpace(dst+match) + " -j DNAT --to-destination " + hostPortString(target, ctrPorts), policy: perContainer},
		)
	}
	return out
}

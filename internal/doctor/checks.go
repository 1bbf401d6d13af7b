package doctor

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/berthnet/berth/internal/firewall"
)

// Check runs every check over in and returns the findings, network by
// network in the order of in.Networks, then container by container.
func Check(in Input) []Finding {
	var out []Finding
	for _, n := range in.Networks {
		c := checker{in: in, n: n}
		out = append(out, c.all()...)
	}
	return out
}

// checker runs the checks of one network.
type checker struct {
	in Input
	n  Network
}

func (c checker) all() []Finding {
	var out []Finding
	for _, f := range []func() []Finding{
		c.forwarding, c.bridge, c.rpFilter, c.routes, c.mtu,
		c.firewall, c.foreignDrops, c.dns, c.ports, c.conntrack,
	} {
		out = append(out, f()...)
	}
	return out
}

func (c checker) finding(id string, sev Severity, subject, what, why, fix string) Finding {
	return Finding{ID: id, Severity: sev, Network: c.n.Name, Subject: subject, What: what, Why: why, Fix: fix}
}

func (c checker) forContainer(f Finding, a Attachment) Finding {
	f.Container, f.ContainerName = a.ContainerID, a.ContainerName
	return f
}

func (c checker) sysctl(key string) (string, bool) {
	v, ok := c.in.Host.Sysctls[key]
	return v, ok
}

func (c checker) families() (v4, v6 bool) {
	for _, s := range c.n.Subnets {
		if s.Prefix.Addr().Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	return v4, v6
}

// routed reports whether the network's traffic is forwarded by the host
// (a bridge network that is not internal).
func (c checker) routed() bool { return c.n.IsBridge() && !c.n.Internal }

func (c checker) forwarding() []Finding {
	if !c.routed() {
		return nil
	}
	v4, v6 := c.families()
	var out []Finding
	if v, ok := c.sysctl("net.ipv4.ip_forward"); ok && v == "0" && v4 {
		out = append(out, c.finding(IPForwardOff, Error, "net.ipv4.ip_forward",
			"IPv4 forwarding is off (net.ipv4.ip_forward = 0).",
			"The host does not pass packets between the containers and anything outside their network, so they reach neither the internet nor other hosts, and published ports do not answer from outside.",
			"sysctl -w net.ipv4.ip_forward=1 (and set it in /etc/sysctl.d so a reboot keeps it; berth sets it when it creates a bridge, so something reset it)."))
	}
	if v, ok := c.sysctl("net.ipv6.conf.all.forwarding"); ok && v == "0" && v6 {
		out = append(out, c.finding(IPv6ForwardingOff, Error, "net.ipv6.conf.all.forwarding",
			"IPv6 forwarding is off (net.ipv6.conf.all.forwarding = 0).",
			"The host does not pass the containers' IPv6 packets to or from anything outside their network.",
			"sysctl -w net.ipv6.conf.all.forwarding=1 (and set it in /etc/sysctl.d)."))
	}
	return out
}

func (c checker) link(name string) (Link, bool) {
	for _, l := range c.in.Host.Links {
		if l.Name == name {
			return l, true
		}
	}
	return Link{}, false
}

func (c checker) bridge() []Finding {
	if !c.n.IsBridge() || c.in.Host.Links == nil {
		return nil
	}
	l, ok := c.link(c.n.Bridge)
	switch {
	case !ok:
		return []Finding{c.finding(BridgeMissing, Error, c.n.Bridge,
			fmt.Sprintf("The network's bridge %s does not exist.", c.n.Bridge),
			"The containers' host-side interfaces hang on nothing: they reach neither each other through the host nor anything outside.",
			"berth network reload --all (sets every container's network up again).")}
	case !l.Up:
		return []Finding{c.finding(BridgeDown, Error, c.n.Bridge,
			fmt.Sprintf("The network's bridge %s is down.", c.n.Bridge),
			"A bridge that is down passes no packets: the containers reach neither each other nor anything outside.",
			fmt.Sprintf("ip link set %s up", c.n.Bridge))}
	}
	return nil
}

func (c checker) rpFilter() []Finding {
	v4, _ := c.families()
	if !c.n.IsBridge() || !v4 {
		return nil
	}
	all, ok1 := c.sysctl("net.ipv4.conf.all.rp_filter")
	dev, ok2 := c.sysctl("net.ipv4.conf." + c.n.Bridge + ".rp_filter")
	if !ok1 || !ok2 {
		return nil
	}
	a, _ := strconv.Atoi(all)
	d, _ := strconv.Atoi(dev)
	if max(a, d) != 1 {
		return nil
	}
	return []Finding{c.finding(RPFilterStrict, Warning, "net.ipv4.conf."+c.n.Bridge+".rp_filter",
		fmt.Sprintf("Strict reverse-path filtering is on for bridge %s (rp_filter all=%s, %s=%s; the kernel uses the larger).", c.n.Bridge, all, c.n.Bridge, dev),
		"The kernel drops a container's packet when the reply would not leave through the bridge it came in on: containers on more than one network, routes added in containers and policy routing lose traffic. berth sets loose mode (2).",
		fmt.Sprintf("sysctl -w net.ipv4.conf.%s.rp_filter=2", c.n.Bridge))}
}

// routes finds routes that take traffic for the network's subnets away
// from its bridge: a route in the main table through another interface as
// specific as the bridge's or more, or a route in a table that a policy
// rule consults before the main table decides (a VPN's).
func (c checker) routes() []Finding {
	if !c.n.IsBridge() {
		return nil
	}
	var out []Finding
	add := func(r Route, s netip.Prefix, why string) {
		out = append(out, c.finding(RouteOverlap, Error, describeRoute(r),
			fmt.Sprintf("The host route %s overlaps the network's subnet %s: %s.", describeRoute(r), s, why),
			"Packets for the containers' addresses leave through "+via(r)+" instead of the bridge "+c.n.Bridge+": replies and published ports to those containers fail.",
			fmt.Sprintf("Remove the route (ip route del %s), or create the network on a subnet nothing else routes (berth network create --subnet ...) and move the containers there.", routeSpec(r))))
	}
	for _, s := range c.n.Subnets {
		for _, r := range c.in.Host.Routes {
			if (r.Table == TableMain || r.Table == 0) && c.foreign(r, s.Prefix) && r.Dst.Bits() >= s.Prefix.Bits() {
				add(r, s.Prefix, "it is as specific as the bridge's route or more, so it wins")
			}
		}
		if r, rule, ok := c.policyRoute(s.Prefix); ok {
			add(r, s.Prefix, fmt.Sprintf("table %d is consulted before the main table (rule priority %d)", r.Table, rule.Priority))
		}
	}
	return out
}

// foreign reports whether r is a route of the family of s, overlapping it,
// through something other than the bridge.
func (c checker) foreign(r Route, s netip.Prefix) bool {
	return r.Dev != c.n.Bridge && r.Dst.IsValid() && r.Dst.Addr().Is4() == s.Addr().Is4() && r.Dst.Overlaps(s)
}

// policyRoute follows the policy rules, by priority, as the kernel would
// for traffic to subnet s: the first rule whose table has a route covering
// s (not suppressed) decides. It returns that route and rule when it is
// not the main table's and does not go to the bridge.
func (c checker) policyRoute(s netip.Prefix) (Route, Rule, bool) {
	rules := slices.Clone(c.in.Host.Rules)
	slices.SortStableFunc(rules, func(a, b Rule) int { return a.Priority - b.Priority })
	for _, rule := range rules {
		if rule.Table == TableLocal || !rule.selects(s) {
			continue
		}
		r, ok := c.covering(rule.Table, s)
		if !ok || rule.SuppressPrefixLen >= 0 && r.Dst.Bits() <= rule.SuppressPrefixLen {
			continue
		}
		if rule.Table == TableMain || r.Dev == c.n.Bridge {
			return Route{}, Rule{}, false
		}
		return r, rule, true
	}
	return Route{}, Rule{}, false
}

// covering returns the most specific route of table that covers all of s.
func (c checker) covering(table int, s netip.Prefix) (Route, bool) {
	var best Route
	found := false
	for _, r := range c.in.Host.Routes {
		if r.Table != table || !r.Dst.IsValid() || r.Dst.Addr().Is4() != s.Addr().Is4() || r.Dst.Bits() > s.Bits() || !r.Dst.Contains(s.Addr()) {
			continue
		}
		if !found || r.Dst.Bits() > best.Dst.Bits() {
			best, found = r, true
		}
	}
	return best, found
}

// selects reports whether the rule applies to traffic toward subnet s
// from anywhere (no interface or source selector, a mark selector only
// when inverted: unmarked traffic is what containers send).
func (r Rule) selects(s netip.Prefix) bool {
	if r.Iface || r.Src.IsValid() && r.Src.Bits() > 0 {
		return false
	}
	if r.Family != 0 && (r.Family == 4) != s.Addr().Is4() {
		return false
	}
	if r.Mark && !r.Invert {
		return false
	}
	return !r.Dst.IsValid() || r.Dst.Overlaps(s)
}

func describeRoute(r Route) string {
	s := r.Dst.String()
	if r.Type != "" && r.Type != "unicast" {
		s = r.Type + " " + s
	}
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	if r.Table != TableMain && r.Table != 0 {
		s += " table " + strconv.Itoa(r.Table)
	}
	return s
}

func routeSpec(r Route) string {
	s := r.Dst.String()
	if r.Type != "" && r.Type != "unicast" {
		s = r.Type + " " + s
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	if r.Table != TableMain && r.Table != 0 {
		s += " table " + strconv.Itoa(r.Table)
	}
	return s
}

func via(r Route) string {
	if r.Dev != "" {
		return r.Dev
	}
	if r.Type != "" && r.Type != "unicast" {
		return "nowhere (a " + r.Type + " route)"
	}
	return "another path"
}

// uplinks returns the links of the main table's default routes of a family.
func (c checker) uplinks(v4 bool) []Link {
	var out []Link
	for _, r := range c.in.Host.Routes {
		if (r.Table == TableMain || r.Table == 0) && r.Dst.IsValid() && r.Dst.Bits() == 0 && r.Dst.Addr().Is4() == v4 && r.Dev != "" {
			if l, ok := c.link(r.Dev); ok && !slices.ContainsFunc(out, func(x Link) bool { return x.Name == l.Name }) {
				out = append(out, l)
			}
		}
	}
	return out
}

func (c checker) mtu() []Finding {
	if !c.routed() {
		return nil
	}
	br, ok := c.link(c.n.Bridge)
	if !ok || br.MTU == 0 {
		return nil
	}
	v4, v6 := c.families()
	var ups []Link
	if v4 {
		ups = append(ups, c.uplinks(true)...)
	}
	if v6 {
		for _, l := range c.uplinks(false) {
			if !slices.ContainsFunc(ups, func(x Link) bool { return x.Name == l.Name }) {
				ups = append(ups, l)
			}
		}
	}
	var out []Finding
	for _, up := range ups {
		if up.MTU > 0 && br.MTU > up.MTU {
			out = append(out, c.finding(MTUMismatch, Warning, c.n.Bridge,
				fmt.Sprintf("The bridge %s has MTU %d but the uplink %s (the default route's) has MTU %d.", c.n.Bridge, br.MTU, up.Name, up.MTU),
				"Containers send packets up to the larger size; those that do not fit the uplink need fragmenting or an ICMP \"too big\" that firewalls often drop, so large transfers (TLS handshakes, downloads) stall while small ones work.",
				fmt.Sprintf("Recreate the network with the uplink's MTU (berth network create -o mtu=%d ...), or raise the uplink's MTU if the path allows it.", up.MTU)))
		}
	}
	return out
}

func (c checker) firewall() []Finding {
	fw := c.in.Host.Firewall
	if !fw.Checked || !c.n.Firewalled {
		return nil
	}
	var out []Finding
	id := c.n.ID
	if id == "" {
		id = c.n.Name
	}
	if slices.Contains(fw.MissingNetworks, id) {
		out = append(out, c.finding(FirewallMissing, Error, describeTable(fw.Driver),
			fmt.Sprintf("The %s rules of network %s are missing (%s).", fw.Driver, c.n.Name, describeTable(fw.Driver)),
			"Without them the containers' traffic is not masqueraded or forwarded and their published ports do not answer; something outside berth flushed or deleted them (a firewall service restart, nft flush ruleset, iptables -F).",
			"berth network reload --all (restores the rules of every container; with nftables the next container set up or torn down also does)."))
	}
	for _, g := range fw.MissingForwards {
		if g.Network != c.n.Name {
			continue
		}
		a := c.attachment(g.ContainerID)
		fix := "berth network reload --all (podman network reload --all for Podman's containers)"
		if a.ContainerName != "" {
			fix = "berth network reload " + a.ContainerName
		}
		f := c.finding(PortForwardMissing, Error, g.Detail,
			"A published port is missing from the firewall: "+g.Detail+".",
			"Connections to that host port are not forwarded to the container.", fix)
		out = append(out, c.forContainer(f, a))
	}
	return out
}

func describeTable(driver string) string {
	switch driver {
	case "nftables":
		return "table inet berth"
	case "iptables":
		return "iptables chains NETAVARK_*"
	}
	return driver + " rules"
}

func (c checker) attachment(id string) Attachment {
	for _, a := range c.in.Attachments {
		if a.ContainerID == id && a.Network == c.n.Name {
			return a
		}
	}
	return Attachment{ContainerID: id}
}

func (c checker) foreignDrops() []Finding {
	if !c.n.IsBridge() {
		return nil
	}
	nf4, _ := c.sysctl("net.bridge.bridge-nf-call-iptables")
	nf6, _ := c.sysctl("net.bridge.bridge-nf-call-ip6tables")
	v4, v6 := c.families()
	var out []Finding
	for _, d := range c.in.Host.Drops {
		if !c.concerns(d) || c.accepted(d) {
			continue
		}
		how, fix := "a rule that drops: "+d.Rule, fmt.Sprintf("Remove that rule, or add an accept for the network's subnets and bridge %s before it (with Docker installed: iptables -I DOCKER-USER -i %s -j ACCEPT; iptables -I DOCKER-USER -o %s -j ACCEPT).", c.n.Bridge, c.n.Bridge, c.n.Bridge)
		if d.Policy {
			how, fix = "a drop policy", c.policyFix(d)
		}
		if d.Family == "bridge" {
			fix = "Remove the bridge-family chain's drop, or accept the network's bridge " + c.n.Bridge + " in it."
		}
		if !c.n.Internal || d.Family == "bridge" {
			out = append(out, c.finding(ForeignDrop, Error, d.Chain,
				fmt.Sprintf("%s, which is not berth's, has %s on the forward path.", capital(d.Chain), how),
				"netfilter runs every table's forward chain: a drop in any of them is final, whatever berth's own table accepts. The containers' traffic to and from outside (and to published ports) is dropped. Docker and some firewall tools set such a policy.",
				fix))
		}
		sameBridge := d.Family == "ip" && v4 && nf4 == "1" || d.Family == "ip6" && v6 && nf6 == "1" || d.Family == "inet" && (v4 && nf4 == "1" || v6 && nf6 == "1")
		if sameBridge {
			out = append(out, c.finding(BridgeNFDrop, Error, "net.bridge.bridge-nf-call-iptables",
				fmt.Sprintf("br_netfilter is loaded and bridge-nf-call-iptables is on, so traffic between containers on bridge %s also passes %s.", c.n.Bridge, d.Chain),
				"Bridged packets between two containers of the same network go through the IP forward chains; the foreign drop there cuts containers off from each other, not only from outside.",
				"Accept the bridge's traffic in that chain (see "+ForeignDrop+"), or turn bridged filtering off if nothing needs it: sysctl -w net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0."))
		}
	}
	return out
}

// concerns reports whether a drop is on the network's forward path: a
// table of a family the network has subnets of (inet and bridge: any).
func (c checker) concerns(d Drop) bool {
	v4, v6 := c.families()
	return !(d.Family == "ip" && !v4 || d.Family == "ip6" && !v6)
}

// accepted reports whether berth's accept rules for the network come
// before the drop (a drop rule) or the end of the chain (a drop policy).
func (c checker) accepted(d Drop) bool {
	_, ok := d.Accepted[c.n.ID]
	return ok && c.n.ID != ""
}

// keepsAccepts reports whether berth's firewall driver keeps accept rules
// in other programs' forward chains (nftables and iptables do).
func (c checker) keepsAccepts() bool {
	switch c.in.Host.Firewall.Driver {
	case "nftables", "iptables":
		return c.n.Firewalled && !c.n.Internal
	}
	return false
}

// policyFix is the fix of a foreign drop policy: berth's own accept rules
// where its driver keeps them, else the administrator's.
func (c checker) policyFix(d Drop) string {
	manual := fmt.Sprintf("accept the network's traffic in that chain (for iptables: iptables -I FORWARD -i %s -j ACCEPT; iptables -I FORWARD -o %s -j ACCEPT), or set its policy to accept.", c.n.Bridge, c.n.Bridge)
	if !c.keepsAccepts() || d.Family == "bridge" {
		return capital(manual)
	}
	return fmt.Sprintf("berth network reload --all: berth adds accept rules for the network to that chain (to Docker's DOCKER-USER chain when FORWARD jumps there), with the comment %q, and keeps them while the network has containers. If they do not appear (an iptables-legacy ruleset beside the nftables driver, missing iptables-nft binaries), %s", firewall.Mark(c.n.ID), manual)
}

// Remark is something the doctor found in order that is worth saying
// about a network.
type Remark struct {
	Network string
	Text    string
}

// Remarks returns, per network in the order of in.Networks, the foreign
// drop policies that berth's accept rules for the network get past, with
// where those rules are.
func Remarks(in Input) []Remark {
	var out []Remark
	for _, n := range in.Networks {
		c := checker{in: in, n: n}
		if !n.IsBridge() {
			continue
		}
		for _, d := range in.Host.Drops {
			if d.Policy && c.concerns(d) && c.accepted(d) {
				out = append(out, Remark{Network: n.Name, Text: fmt.Sprintf("%s drops forwarded traffic by policy; berth's accept rules for the network are in place in chain %s (comment %q).", capital(d.Chain), d.Accepted[n.ID], firewall.Mark(n.ID))})
			}
		}
	}
	return out
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (c checker) dns() []Finding {
	if !c.n.IsBridge() || !c.n.DNS {
		return nil
	}
	d := c.in.Host.DNS
	port := d.Port
	if port == 0 {
		port = 53
	}
	if d.PID == 0 {
		return []Finding{c.finding(DNSNotRunning, Error, "aardvark-dns",
			"berth's DNS server for this network is not running.",
			"Containers resolve each other's names and outside names through the gateway; with no server there every lookup times out.",
			"berth network reload --all (starts the DNS server again with every container's names).")}
	}
	var out []Finding
	for _, s := range c.n.Subnets {
		gw := s.Gateway
		if !gw.IsValid() || !c.n.Managed {
			continue
		}
		if c.listening("udp", netip.AddrPortFrom(gw, port), nil) {
			continue
		}
		out = append(out, c.finding(DNSNotListening, Error, netip.AddrPortFrom(gw, port).String(),
			fmt.Sprintf("berth's DNS server (pid %d) runs but nothing listens on the gateway %s.", d.PID, netip.AddrPortFrom(gw, port)),
			"Containers send their DNS queries to the gateway; unanswered, every lookup times out.",
			"berth network reload --all (restarts the DNS server on every network's gateway); check that the gateway address is on the bridge (ip addr show "+c.n.Bridge+")."))
	}
	return out
}

// listening reports whether a listening socket of proto is bound to
// exactly ap and, when keep is set, kept by keep.
func (c checker) listening(proto string, ap netip.AddrPort, keep func(Socket) bool) bool {
	for _, s := range c.in.Host.Sockets {
		if s.Proto == proto && s.Listening && s.Local == ap && (keep == nil || keep(s)) {
			return true
		}
	}
	return false
}

// ports finds published host ports that a process other than the
// container's monitor listens on.
func (c checker) ports() []Finding {
	var out []Finding
	for _, a := range c.in.Attachments {
		if a.Network != c.n.Name {
			continue
		}
		for _, p := range a.Ports {
			for _, s := range c.in.Host.Sockets {
				if !takes(s, p) {
					continue
				}
				if slices.ContainsFunc(s.Owners, func(o Process) bool { return holds(o, a) }) {
					continue
				}
				who := "a process berth could not identify"
				if len(s.Owners) > 0 {
					who = describeOwners(s.Owners)
				}
				f := c.finding(PortTaken, Error, fmt.Sprintf("%s/%d", p.Proto, p.HostPort),
					fmt.Sprintf("Host port %d/%s, published to %s, is also bound on the host by %s (%s).", p.HostPort, p.Proto, p.Target, who, s.Local),
					"Two things claim the port: berth forwards it to the container, and that process listens on it. Which one a client reaches depends on where it connects from, so some clients get the wrong service or a refused connection, and the port is not held for the container.",
					fmt.Sprintf("Stop that process or move it to another port, or publish the container on a free host port (-p OTHER:%d).", p.Target.Port()))
				out = append(out, c.forContainer(f, a))
			}
		}
	}
	return out
}

// takes reports whether socket s claims the host side of published port p.
func takes(s Socket, p Port) bool {
	if !s.Listening || s.Local.Port() != p.HostPort || s.Proto != p.Proto {
		return false
	}
	la := s.Local.Addr().Unmap()
	if la.IsUnspecified() || !p.HostIP.IsValid() || p.HostIP.IsUnspecified() {
		return true
	}
	return la == p.HostIP.Unmap()
}

// holds reports whether process o holds ports for attachment a: its
// monitor (by PID, or a berth container-monitor of that container), or
// Podman's conmon or rootlessport.
func holds(o Process, a Attachment) bool {
	if slices.Contains(a.Holders, o.PID) {
		return true
	}
	cmd := o.Command
	if strings.Contains(cmd, "container-monitor") && a.ContainerID != "" && strings.Contains(cmd, a.ContainerID) {
		return true
	}
	exe, _, _ := strings.Cut(cmd, " ")
	base := exe[strings.LastIndexByte(exe, '/')+1:]
	return base == "conmon" || base == "rootlessport"
}

func describeOwners(ps []Process) string {
	var parts []string
	for _, p := range ps {
		cmd := p.Command
		if len(cmd) > 60 {
			cmd = cmd[:60] + "..."
		}
		parts = append(parts, fmt.Sprintf("process %d (%s)", p.PID, cmd))
	}
	return strings.Join(parts, ", ")
}

// conntrack finds connection tracking entries of a published port that
// still translate to an address that is no longer the port's target (a
// container restarted with a new address): UDP flows keep their entry, and
// so their old destination, for as long as packets keep coming.
func (c checker) conntrack() []Finding {
	var out []Finding
	for _, a := range c.in.Attachments {
		if a.Network != c.n.Name {
			continue
		}
		for _, p := range a.Ports {
			for _, f := range c.in.Host.Flows {
				if !c.stale(f, p) {
					continue
				}
				fd := c.finding(StaleConntrack, Warning, fmt.Sprintf("%s %s -> %s", f.Proto, f.OrigSrc, f.OrigDst),
					fmt.Sprintf("A conntrack entry still sends %s %s -> %s to %s, but the port now goes to %s.", f.Proto, f.OrigSrc, f.OrigDst, f.ReplySrc, p.Target),
					"The kernel translates an existing flow once, when it starts: while packets keep the entry alive (UDP, long TCP connections) they go to the old address, where no container answers.",
					fmt.Sprintf("conntrack -D -p %s --orig-port-dst %d (conntrack-tools); the client's next flow goes to the container.", f.Proto, p.HostPort))
				out = append(out, c.forContainer(fd, a))
			}
		}
	}
	return out
}

// stale reports whether flow f is a translated flow of port p that goes
// to an address of this network other than p's target.
func (c checker) stale(f Flow, p Port) bool {
	if f.Proto != p.Proto || f.OrigDst.Port() != p.HostPort {
		return false
	}
	if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() && f.OrigDst.Addr().Unmap() != p.HostIP.Unmap() {
		return false
	}
	to := f.ReplySrc.Addr().Unmap()
	if to == f.OrigDst.Addr().Unmap() || to == p.Target.Addr().Unmap() {
		return false
	}
	for _, s := range c.n.Subnets {
		if s.Prefix.Contains(to) {
			return true
		}
	}
	return false
}

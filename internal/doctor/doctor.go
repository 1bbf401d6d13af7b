// Package doctor explains why container traffic can fail on a host berth
// manages: it runs checks over what berth's records expect (networks,
// container attachments, published ports) and a Snapshot of the host as
// read back from the kernel (sysctls, links, routes, policy rules, the
// firewall, sockets, conntrack, the DNS server), and returns Findings that
// say, in plain words, what is wrong, why traffic fails, and the fix.
//
// The package does no I/O: package probe reads the kernel into a Snapshot,
// package survey joins it with berth's records, and the berth command
// prints the result (berth network doctor).
package doctor

import "net/netip"

// Severity ranks a finding. Every finding makes the doctor's exit code 1.
type Severity string

// Severities.
const (
	// Error: traffic fails now.
	Error Severity = "error"
	// Warning: traffic fails for some clients or some packets, or will
	// fail on the next change.
	Warning Severity = "warning"
)

// Finding IDs, stable for tools (--format json).
const (
	IPForwardOff       = "ip-forward-off"
	IPv6ForwardingOff  = "ipv6-forwarding-off"
	BridgeMissing      = "bridge-missing"
	BridgeDown         = "bridge-down"
	FirewallMissing    = "firewall-rules-missing"
	PortForwardMissing = "port-forward-missing"
	ForeignDrop        = "foreign-forward-drop"
	BridgeNFDrop       = "bridge-nf-foreign-drop"
	RPFilterStrict     = "rp-filter-strict"
	RouteOverlap       = "route-overlap"
	DNSNotRunning      = "dns-not-running"
	DNSNotListening    = "dns-not-listening"
	PortTaken          = "port-bound-by-host"
	MTUMismatch        = "mtu-mismatch"
	StaleConntrack     = "stale-conntrack"
)

// Finding is one reason traffic can fail.
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	// Network is the network affected; Container the container (ID),
	// when the finding is about one; ContainerName its name, if known.
	Network       string `json:"network"`
	Container     string `json:"container,omitempty"`
	ContainerName string `json:"container_name,omitempty"`
	// Subject is the object at fault: a sysctl, a route, a chain, a port.
	Subject string `json:"subject"`
	// What happened, Why traffic fails because of it, and the Fix.
	What string `json:"what"`
	Why  string `json:"why"`
	Fix  string `json:"fix"`
}

// Input is everything the checks look at.
type Input struct {
	// Networks are the networks with attachments, as they were set up.
	Networks []Network
	// Attachments are the container interfaces on those networks.
	Attachments []Attachment
	Host        Snapshot
}

// Network is one network as berth set it up.
type Network struct {
	Name   string
	ID     string
	Driver string // bridge, macvlan, ipvlan
	// Bridge is the bridge (bridge driver) or the parent link.
	Bridge   string
	Subnets  []Subnet
	Internal bool
	// Managed is false for a bridge berth did not create (mode unmanaged).
	Managed bool
	// Firewalled: berth keeps firewall rules for the network.
	Firewalled bool
	// DNS: berth registered the network's names with its DNS server
	// (dns_enabled and a DNS configuration file exists).
	DNS bool
}

// Subnet is one address range of a network, with the gateway on the bridge.
type Subnet struct {
	Prefix  netip.Prefix
	Gateway netip.Addr
}

// IsBridge reports whether the network is a bridge network.
func (n Network) IsBridge() bool { return n.Driver == "bridge" }

// Attachment is one container interface on one network.
type Attachment struct {
	ContainerID   string
	ContainerName string
	Network       string
	Interface     string
	Addresses     []netip.Addr
	// Ports are the published ports this attachment carries (one per
	// host port, ranges expanded).
	Ports []Port
	// Holders are processes that may hold the published host ports open
	// for the container (its monitor), besides a berth monitor or conmon
	// recognised by their command line.
	Holders []int
}

// Port is one published port: the host side and the DNAT target.
type Port struct {
	Proto    string     // tcp, udp, sctp
	HostIP   netip.Addr // zero: every address
	HostPort uint16
	Target   netip.AddrPort
}

// Snapshot is the host as read from the kernel, in the namespace that holds
// berth's bridges and firewall.
type Snapshot struct {
	// Sysctls by dotted name, interface names literal
	// ("net.ipv4.conf.berth0.rp_filter"); a key absent was not readable.
	Sysctls map[string]string
	Links   []Link
	Routes  []Route
	Rules   []Rule
	// Drops are base chains of other tables on the forward path that drop
	// traffic (policy or rule), before berth's rules where order matters.
	Drops    []Drop
	Firewall FirewallState
	DNS      DNSState
	Sockets  []Socket
	Flows    []Flow
	// Unread names what could not be read, with why; the checks that need
	// it are skipped (the doctor says so, as notes).
	Unread []string
}

// Link is one network interface.
type Link struct {
	Name string
	Kind string
	MTU  int
	Up   bool
}

// Route is one route of any table.
type Route struct {
	Dst     netip.Prefix
	Dev     string
	Gateway netip.Addr
	Table   int
	Metric  int
	// Type is unicast, blackhole, unreachable, prohibit, local, ...
	Type string
}

// Routing tables of note.
const (
	TableMain  = 254
	TableLocal = 255
	// MainRulePriority is the priority of the kernel's "lookup main" rule.
	MainRulePriority = 32766
)

// Rule is one policy routing rule.
type Rule struct {
	Priority int
	Table    int
	Family   int // 4 or 6
	Src, Dst netip.Prefix
	// Mark is set for an fwmark selector; Invert is "not".
	Mark   bool
	Invert bool
	// Iface: the rule selects by incoming or outgoing interface.
	Iface bool
	// SuppressPrefixLen: routes of this prefix length or shorter found in
	// Table are ignored (-1: none).
	SuppressPrefixLen int
	// Goto, Nop and other non-lookup actions are not recorded.
}

// Drop is a way traffic forwarded for containers is dropped by a chain
// that is not berth's.
type Drop struct {
	// Chain is where: "table ip filter chain FORWARD".
	Chain string
	// Family of the table: ip, ip6, inet, bridge.
	Family string
	// Policy: the chain's policy is drop; else Rule describes the rule.
	Policy bool
	Rule   string
	// Accepted maps the ID of each network whose accept rules berth keeps
	// there (rules marked "berth net <ID>" in the chain or a chain it
	// jumps to, such as Docker's DOCKER-USER), before the dropping rule or
	// anywhere for a drop policy, to the chain that holds them: the drop
	// does not reach those networks' traffic.
	Accepted map[string]string
}

// FirewallState is what berth's firewall driver reports of its own rules.
type FirewallState struct {
	Driver string
	// Checked: the driver could tell (a firewall.Checker) and was asked.
	Checked bool
	// MissingNetworks are the IDs of networks whose rules are missing.
	MissingNetworks []string
	// MissingForwards are the port forwards missing, per container.
	MissingForwards []ForwardGap
}

// ForwardGap is a container's port forward missing from the firewall.
type ForwardGap struct {
	ContainerID string
	Network     string
	Detail      string
}

// DNSState is berth's DNS server as found.
type DNSState struct {
	// PID is the running server's process, 0 when none runs.
	PID int
	// Port is where it should listen (53 unless dns_bind_port).
	Port uint16
}

// Socket is one socket of the namespace.
type Socket struct {
	Proto string // tcp, udp (tcp6 and udp6 as tcp and udp)
	Local netip.AddrPort
	// Listening: a TCP socket in LISTEN, or an unconnected UDP socket.
	Listening bool
	Inode     uint64
	// Owners are the processes with the socket open (empty: unknown).
	Owners []Process
}

// Process is a process by PID and command line.
type Process struct {
	PID     int
	Command string
}

// Flow is one conntrack entry.
type Flow struct {
	Proto              string
	OrigSrc, OrigDst   netip.AddrPort
	ReplySrc, ReplyDst netip.AddrPort
}

// Package firewall is the model of what berth asks of a host firewall:
// masquerade for each network's subnets, forwarding and isolation between
// bridges, DNAT for published ports, and the DNS port redirect. Drivers
// (nftables, iptables, firewalld, none) implement Driver; the model itself
// does no I/O.
package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/berthnet/berth/internal/network"
)

// Driver names.
const (
	DriverNftables = "nftables"
	DriverIptables = "iptables"
	DriverNone     = "none"
	// DriverFirewalld asks firewalld, over D-Bus, for netavark's zone
	// and policies instead of programming the kernel.
	DriverFirewalld = "firewalld"
)

// Errors drivers return, wrapped; callers match them with errors.Is.
var (
	// ErrUnknownDriver is returned for a driver name berth does not know.
	ErrUnknownDriver = errors.New("unknown firewall driver")
	// ErrPortInUse is returned when a host port is already forwarded to
	// another target.
	ErrPortInUse = errors.New("port already in use")
)

// NetworkRules is what the firewall needs to know about one network.
type NetworkRules struct {
	ID        string
	Name      string
	Bridge    string
	Subnets   []netip.Prefix
	Gateways  []netip.Addr
	Isolation network.Isolation
	// DNSPort is the port the DNS server listens on; when it is not 53,
	// queries to a gateway's port 53 are redirected to it.
	DNSPort uint16
	// NoMasquerade leaves traffic from the subnets to elsewhere
	// unmasqueraded (a CNI bridge with ipMasq false, or a port-mapping
	// plugin that only needs the hairpin rule); hairpin traffic to a
	// published port of the same subnet is still masqueraded.
	NoMasquerade bool
	// OutboundAddr4 and OutboundAddr6, when valid, are what outgoing
	// traffic of that family is source-NATed to instead of masqueraded.
	OutboundAddr4, OutboundAddr6 netip.Addr
	// NoHairpin leaves out the hairpin masquerade too: only the forward
	// rules remain (a CNI port mapping with snat false).
	NoHairpin bool
	// SharedBridge, on a teardown, says that another network with
	// containers names the same bridge: what is keyed by the bridge's
	// name alone stays for it.
	SharedBridge bool
}

// PortForward is the published ports of one container on one network.
type PortForward struct {
	NetworkID   string
	NetworkName string
	ContainerID string
	// The DNAT targets: the container's first address of each family.
	IPv4, IPv6 netip.Addr
	Mappings   []network.PortMapping
}

// Driver programs the host firewall. Every method is called with the
// network-wide lock held, so drivers need no locking of their own across
// processes.
type Driver interface {
	// Name returns the driver name ("nftables", "iptables", "none").
	Name() string
	// Setup makes sure the rules of each network exist (idempotent) and adds
	// the port forwards. It is all or nothing: on error nothing it added
	// remains.
	Setup(nets []NetworkRules, ports []PortForward) error
	// Teardown removes the port forwards, then the rules of the networks
	// in complete (networks that no container uses any more). Missing
	// rules are not an error.
	Teardown(ports []PortForward, complete []NetworkRules) error
	// Reset removes everything the driver ever created.
	Reset() error
}

// Checker is implemented by drivers that can tell whether the rules they
// set up are still in place, for the CHECK verbs of the front-ends. A
// driver that programs nothing answers that everything is in place.
type Checker interface {
	// HasNetwork reports whether the rules of the network with this ID
	// exist.
	HasNetwork(id string) (bool, error)
	// HasForwards returns an error naming the first port forward that is
	// missing or points elsewhere, nil when all are in place.
	HasForwards(ports []PortForward) error
}

// Healer is implemented by drivers that can find and mend damage done to
// their rules from outside (a flushed ruleset, a flushed chain or map).
type Healer interface {
	// Damage describes what of the rules of nets and the forwards of
	// ports is missing, one finding each ("table inet berth missing",
	// "chain forward flushed", "map pf4any: 2 port forwards missing");
	// none when all are in place.
	Damage(nets []NetworkRules, ports []PortForward) ([]string, error)
	// Repair restores them. nets must be every network with containers
	// and ports every container's forwards: what is rebuilt keeps nothing
	// else.
	Repair(nets []NetworkRules, ports []PortForward) error
}

// Polled is implemented by drivers that can tell whether the kernel
// announces changes to their rules as nftables events (the iptables
// driver on an iptables-legacy backend does not), for a watcher that
// otherwise waits for those events.
type Polled interface {
	// Unannounced reports whether changes to the driver's rules go
	// unannounced, so that they must be checked periodically.
	Unannounced() bool
}

// Generation is one state of the ruleset of a network namespace, as the
// kernel numbers them: nftables counts one more on every commit that
// changed something (NFT_MSG_GETGEN).
type Generation struct {
	// NetNS is the namespace's cookie (SO_NETNS_COOKIE), which the kernel
	// never gives to another namespace while it runs, unlike its inode
	// number.
	NetNS uint64
	// ID is the ruleset's generation in that namespace.
	ID uint32
}

// Versioned is implemented by drivers whose kernel numbers the ruleset's
// changes, so that a caller can tell whether anyone else changed it since
// the driver's own last change. Mark and Followed are called under the
// same lock as the other methods, by one caller at a time.
type Versioned interface {
	// Mark returns the ruleset's generation now and starts following the
	// driver's own changes from it.
	Mark() (Generation, error)
	// Followed returns the generation the driver's changes since Mark
	// left, and ok true when they alone made it: each change's commits
	// account for the whole step of the generation (so no other writer
	// committed in between), and every generation could be read.
	Followed() (g Generation, ok bool)
}

// Follow is one step of following a driver's own changes: from at (ok
// true when only the driver's own changes led there), a change that found
// the ruleset at before, made commits commits and left it at after. The
// result is after, and ok true only when the change started where the
// last one ended and its commits account for the whole step.
func Follow(at Generation, ok bool, before, after Generation, commits int) (Generation, bool) {
	ok = ok && before == at && after.NetNS == before.NetNS && commits >= 0 &&
		uint64(after.ID-before.ID) == uint64(commits)
	return after, ok
}

// NetworkID8 returns the short form of a network ID used in rule names.
func NetworkID8(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// Forward is one published port after a mapping's range is expanded.
type Forward struct {
	Proto     string     // tcp, udp or sctp
	HostIP    netip.Addr // zero: every local address
	HostPort  uint16
	Target    netip.Addr
	DestPort  uint16
	Container string
}

// Key identifies the host side of a forward.
func (f Forward) Key() string {
	h := "*"
	if f.HostIP.IsValid() {
		h = f.HostIP.String()
	}
	return fmt.Sprintf("%s/%s:%d", f.Proto, h, f.HostPort)
}

// Expand turns a container's port forward into single-port forwards, per
// address family: a mapping without host IP applies to both families (when
// the container has an address of that family), one with a host IP to the
// family of that IP. A host IP of 0.0.0.0 or :: means every address.
func (pf PortForward) Expand() (v4, v6 []Forward) {
	for _, m := range pf.Mappings {
		h, _ := m.HostAddr()
		if h.IsValid() && h.IsUnspecified() {
			if h.Is4() {
				h4 := netip.Addr{}
				v4 = append(v4, expand(m, h4, pf.IPv4, pf.ContainerID)...)
				continue
			}
			v6 = append(v6, expand(m, netip.Addr{}, pf.IPv6, pf.ContainerID)...)
			continue
		}
		if pf.IPv4.IsValid() && (!h.IsValid() || h.Is4()) {
			v4 = append(v4, expand(m, h, pf.IPv4, pf.ContainerID)...)
		}
		if pf.IPv6.IsValid() && (!h.IsValid() || h.Is6()) {
			v6 = append(v6, expand(m, h, pf.IPv6, pf.ContainerID)...)
		}
	}
	return v4, v6
}

func expand(m network.PortMapping, host, target netip.Addr, ctr string) []Forward {
	if !target.IsValid() {
		return nil
	}
	ones := network.ExpandPorts(m)
	out := make([]Forward, 0, len(ones))
	for _, one := range ones {
		out = append(out, Forward{
			Proto:     one.Protocol,
			HostIP:    host,
			HostPort:  one.HostPort,
			Target:    target,
			DestPort:  one.ContainerPort,
			Container: ctr,
		})
	}
	return out
}

// NeedsRouteLocalnet reports whether any forward can be reached through
// 127.0.0.1, which needs route_localnet on the bridge.
func NeedsRouteLocalnet(ports []PortForward) bool {
	for _, pf := range ports {
		v4, _ := pf.Expand()
		for _, f := range v4 {
			if !f.HostIP.IsValid() || f.HostIP.IsLoopback() {
				return true
			}
		}
	}
	return false
}

// SubnetsOf splits prefixes by family, masked.
func SubnetsOf(p []netip.Prefix) (v4, v6 []netip.Prefix) {
	for _, s := range p {
		s = s.Masked()
		if s.Addr().Is4() {
			v4 = append(v4, s)
		} else {
			v6 = append(v6, s)
		}
	}
	return v4, v6
}

// Describe renders the model as stable text, for golden tests and logs.
func Describe(nets []NetworkRules, ports []PortForward) string {
	var b strings.Builder
	ns := append([]NetworkRules(nil), nets...)
	sort.Slice(ns, func(i, j int) bool { return ns[i].Name < ns[j].Name })
	for _, n := range ns {
		fmt.Fprintf(&b, "network %s id=%s bridge=%s isolate=%s dns=%d\n", n.Name, NetworkID8(n.ID), n.Bridge, n.Isolation, n.DNSPort)
		for _, s := range n.Subnets {
			fmt.Fprintf(&b, "  masquerade %s\n", s.Masked())
		}
	}
	for _, pf := range ports {
		v4, v6 := pf.Expand()
		for _, f := range append(v4, v6...) {
			fmt.Fprintf(&b, "forward %s -> %s\n", f.Key(), netip.AddrPortFrom(f.Target, f.DestPort))
		}
	}
	return b.String()
}

// MarkPrefix starts the comment that marks a rule as berth's: "berth net
// <network ID>". berth's own per-network rules carry it, and so do the
// accept rules berth keeps in chains of other programs (Docker's
// DOCKER-USER, a host's own forward chain), where it is the only way to
// tell them from the rules around them.
const MarkPrefix = "berth net "

// Mark returns the comment that marks the rules of the network with this
// ID: MarkPrefix, then the ID with every byte that is not a letter, digit,
// '.', '_', ':' or '-' replaced by '_' (so that it needs no quoting inside
// an iptables comment), at most 200 bytes of it.
func Mark(id string) string {
	b := []byte(id)
	if len(b) > 200 {
		b = b[:200]
	}
	for i, c := range b {
		if !markByte(c) {
			b[i] = '_'
		}
	}
	return MarkPrefix + string(b)
}

func markByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
}

// MarkedID returns the network ID of a comment made by Mark, and ok false
// for a comment that is not berth's mark.
func MarkedID(comment string) (id string, ok bool) {
	id, ok = strings.CutPrefix(comment, MarkPrefix)
	return id, ok && id != ""
}

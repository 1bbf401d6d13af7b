// Package dhcp is berth's DHCPv4 client logic: what a lease is (read from the
// server's DHCPACK), when it must be renewed, rebound or given up (RFC 2131
// §4.4.5), the messages that identify a container to the server, and the
// Keeper that holds a lease over its life.
//
// The package does no I/O of its own. The DHCP transactions go through an
// Exchanger and the interface configuration through a Binder, both supplied
// by the caller (the DHCP proxy opens its sockets inside the container's
// network namespace), and time comes from a Clock, so everything here is
// tested without root and without waiting.
package dhcp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// ErrNAK is returned by an Exchanger when the server answered DHCPNAK.
var ErrNAK = errors.New("server answered DHCPNAK")

// ErrNoAnswer is returned by an Exchanger when no server answered in time.
var ErrNoAnswer = errors.New("no DHCP answer")

// ErrGone is returned by an Exchanger when the interface (or its network
// namespace) no longer exists; a Keeper then stops.
var ErrGone = errors.New("interface is gone")

// Infinite is the lease time of a lease that never expires (0xffffffff s).
const Infinite = time.Duration(0xffffffff) * time.Second

// Identity is what a client tells the server about itself.
type Identity struct {
	// MAC is the interface's hardware address (chaddr).
	MAC net.HardwareAddr
	// ClientID is sent as option 61 (type 0, then the bytes): the container
	// ID, so the server keys the lease by container, not by MAC.
	ClientID string
	// Hostname is sent as option 12.
	Hostname string
}

// Modifiers returns the options every message of this client carries:
// client identifier, hostname and the parameter request list.
func (id Identity) Modifiers() []dhcpv4.Modifier {
	mods := []dhcpv4.Modifier{
		dhcpv4.WithRequestedOptions(
			dhcpv4.OptionSubnetMask,
			dhcpv4.OptionRouter,
			dhcpv4.OptionDomainNameServer,
			dhcpv4.OptionDomainName,
			dhcpv4.OptionInterfaceMTU,
			dhcpv4.OptionBroadcastAddress,
			dhcpv4.OptionNTPServers,
			dhcpv4.OptionIPAddressLeaseTime,
			dhcpv4.OptionRenewTimeValue,
			dhcpv4.OptionRebindingTimeValue,
			dhcpv4.OptionClasslessStaticRoute,
		),
	}
	if id.ClientID != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptClientIdentifier(append([]byte{0}, id.ClientID...))))
	}
	if id.Hostname != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(id.Hostname)))
	}
	return mods
}

// Route is a classless static route from option 121.
type Route struct {
	Dst     netip.Prefix `json:"dst"`
	Gateway netip.Addr   `json:"gateway"`
}

// Lease is a DHCPv4 lease as the server granted it.
type Lease struct {
	// Addr is the leased address with the subnet's prefix length.
	Addr      netip.Prefix `json:"addr"`
	Gateways  []netip.Addr `json:"gateways,omitempty"`
	Routes    []Route      `json:"routes,omitempty"`
	DNS       []netip.Addr `json:"dns,omitempty"`
	Domain    string       `json:"domain,omitempty"`
	NTP       []netip.Addr `json:"ntp,omitempty"`
	Hostname  string       `json:"hostname,omitempty"`
	MTU       uint16       `json:"mtu,omitempty"`
	Broadcast netip.Addr   `json:"broadcast,omitzero"`
	// Server is the server identifier (option 54): renewals go there.
	Server netip.Addr `json:"server"`
	// NextServer is siaddr.
	NextServer netip.Addr `json:"next_server,omitzero"`
	// Duration is the lease time; T1 and T2 the renewal and rebinding
	// times, all counted from Acquired.
	Duration time.Duration `json:"duration"`
	T1       time.Duration `json:"t1"`
	T2       time.Duration `json:"t2"`
	// Acquired is when the request that was acknowledged was sent.
	Acquired time.Time `json:"acquired"`
	// ACK is the server's DHCPACK, kept to build renewals and the release.
	ACK []byte `json:"ack"`
}

// FromACK reads a lease from a DHCPACK; sent is when the request went out.
func FromACK(ack *dhcpv4.DHCPv4, sent time.Time) (*Lease, error) {
	if ack == nil {
		return nil, errors.New("read lease: no DHCPACK")
	}
	if t := ack.MessageType(); t != dhcpv4.MessageTypeAck {
		return nil, fmt.Errorf("read lease: message is a %s, not a DHCPACK", t)
	}
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || !ip.IsValid() || ip.IsUnspecified() {
		return nil, fmt.Errorf("read lease: DHCPACK has no address (yiaddr %v)", ack.YourIPAddr)
	}
	bits := defaultBits(ip)
	if m := ack.SubnetMask(); m != nil {
		ones, size := m.Size()
		if size != 32 || ones == 0 {
			return nil, fmt.Errorf("read lease: bad subnet mask %v", net.IP(m))
		}
		bits = ones
	}
	l := &Lease{
		Addr:     netip.PrefixFrom(ip, bits),
		Gateways: addrs(ack.Router()),
		DNS:      addrs(ack.DNS()),
		NTP:      addrs(ack.NTPServers()),
		Domain:   ack.DomainName(),
		Hostname: ack.HostName(),
		Acquired: sent,
		ACK:      ack.ToBytes(),
	}
	l.Server, _ = netip.AddrFromSlice(ack.ServerIdentifier().To4())
	if !l.Server.IsValid() {
		l.Server, _ = netip.AddrFromSlice(ack.ServerIPAddr.To4())
	}
	if a, ok := netip.AddrFromSlice(ack.ServerIPAddr.To4()); ok && !a.IsUnspecified() {
		l.NextServer = a
	}
	if b, ok := netip.AddrFromSlice(ack.BroadcastAddress().To4()); ok {
		l.Broadcast = b
	}
	if mtu, err := dhcpv4.GetUint16(dhcpv4.OptionInterfaceMTU, ack.Options); err == nil {
		l.MTU = mtu
	}
	for _, r := range ack.ClasslessStaticRoute() {
		if r == nil || r.Dest == nil {
			continue
		}
		dst, ok := netip.AddrFromSlice(r.Dest.IP.To4())
		if !ok {
			continue
		}
		ones, _ := r.Dest.Mask.Size()
		gw, _ := netip.AddrFromSlice(r.Router.To4())
		l.Routes = append(l.Routes, Route{Dst: netip.PrefixFrom(dst, ones).Masked(), Gateway: gw})
	}
	l.Duration = ack.IPAddressLeaseTime(0)
	if l.Duration <= 0 {
		// RFC 2131 makes the lease time mandatory in a DHCPACK; a server
		// that leaves it out gets the shortest sensible lease.
		l.Duration = time.Hour
	}
	l.T1 = ack.IPAddressRenewalTime(0)
	l.T2 = ack.IPAddressRebindingTime(0)
	l.fixTimes()
	return l, nil
}

// fixTimes applies RFC 2131's defaults (T1 = 0.5, T2 = 0.875 of the lease
// time) and keeps 0 < T1 < T2 < lease time.
func (l *Lease) fixTimes() {
	if l.Duration == Infinite {
		l.T1, l.T2 = 0, 0
		return
	}
	if l.T2 <= 0 || l.T2 >= l.Duration {
		l.T2 = fraction(l.Duration, 7, 8)
	}
	if l.T1 <= 0 || l.T1 >= l.T2 {
		l.T1 = min(l.Duration/2, fraction(l.T2, 4, 7))
	}
}

// fraction returns d*num/den without overflowing: a lease time of more
// than about 41 years (the protocol allows 136) overflows d*7.
func fraction(d time.Duration, num, den time.Duration) time.Duration {
	return d/den*num + d%den*num/den
}

func defaultBits(ip netip.Addr) int {
	switch b := ip.As4(); {
	case b[0] < 128:
		return 8
	case b[0] < 192:
		return 16
	}
	return 24
}

func addrs(ips []net.IP) []netip.Addr {
	var out []netip.Addr
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip.To4()); ok && !a.IsUnspecified() {
			out = append(out, a)
		}
	}
	return out
}

// Message returns the stored DHCPACK.
func (l *Lease) Message() (*dhcpv4.DHCPv4, error) {
	m, err := dhcpv4.FromBytes(l.ACK)
	if err != nil {
		return nil, fmt.Errorf("decode stored DHCPACK: %w", err)
	}
	return m, nil
}

// Gateway returns the default gateway: the first router, or the gateway
// of a default route in option 121 (which overrides option 3, RFC 3442).
func (l *Lease) Gateway() netip.Addr {
	for _, r := range l.Routes {
		if r.Dst.Bits() == 0 {
			return r.Gateway
		}
	}
	if len(l.Routes) == 0 && len(l.Gateways) > 0 {
		return l.Gateways[0]
	}
	return netip.Addr{}
}

// Phase is where a lease stands in its life.
type Phase int

// The phases of RFC 2131 §4.4.5.
const (
	// Bound: valid, before T1.
	Bound Phase = iota
	// Renewing: between T1 and T2; ask the server that granted it.
	Renewing
	// Rebinding: between T2 and the end; ask any server.
	Rebinding
	// Expired: the address must not be used any more.
	Expired
)

// String returns the phase's name.
func (p Phase) String() string {
	return [...]string{"bound", "renewing", "rebinding", "expired"}[p]
}

// Timing scales a lease's times. Scale 1 (or 0) is the server's timing;
// tests use less to see renewals and expiry without waiting minutes.
type Timing struct {
	Scale float64
}

func (tm Timing) d(d time.Duration) time.Duration {
	if tm.Scale <= 0 || tm.Scale == 1 {
		return d
	}
	return time.Duration(float64(d) * tm.Scale)
}

// RenewAt returns when the lease enters Renewing (the zero time for an
// infinite lease).
func (tm Timing) RenewAt(l *Lease) time.Time {
	if l.Duration == Infinite {
		return time.Time{}
	}
	return l.Acquired.Add(tm.d(l.T1))
}

// RebindAt returns when the lease enters Rebinding.
func (tm Timing) RebindAt(l *Lease) time.Time {
	if l.Duration == Infinite {
		return time.Time{}
	}
	return l.Acquired.Add(tm.d(l.T2))
}

// ExpiresAt returns when the lease ends.
func (tm Timing) ExpiresAt(l *Lease) time.Time {
	if l.Duration == Infinite {
		return time.Time{}
	}
	return l.Acquired.Add(tm.d(l.Duration))
}

// Phase returns the lease's phase at now.
func (tm Timing) Phase(l *Lease, now time.Time) Phase {
	switch {
	case l.Duration == Infinite:
		return Bound
	case now.Before(tm.RenewAt(l)):
		return Bound
	case now.Before(tm.RebindAt(l)):
		return Renewing
	case now.Before(tm.ExpiresAt(l)):
		return Rebinding
	}
	return Expired
}

// PhaseEnd returns when the phase the lease is in at now ends.
func (tm Timing) PhaseEnd(l *Lease, now time.Time) time.Time {
	switch tm.Phase(l, now) {
	case Bound:
		return tm.RenewAt(l)
	case Renewing:
		return tm.RebindAt(l)
	case Rebinding:
		return tm.ExpiresAt(l)
	}
	return now
}

// Retry returns when to send the next request after one went unanswered
// at now: half the time left in the phase (RFC 2131 §4.4.5), at least min,
// and never past the end of the phase.
func (tm Timing) Retry(l *Lease, now time.Time, minWait time.Duration) time.Time {
	end := tm.PhaseEnd(l, now)
	wait := max(end.Sub(now)/2, minWait)
	if t := now.Add(wait); t.Before(end) {
		return t
	}
	return end
}

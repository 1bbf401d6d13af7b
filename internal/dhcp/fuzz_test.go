package dhcp

import (
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// fuzzACKs are DHCP replies as servers send them: dnsmasq's DHCPACK with
// the usual options, one with classless static routes (RFC 3442) and
// explicit T1/T2, an infinite lease, and a DHCPOFFER.
func fuzzACKs() [][]byte {
	mac := net.HardwareAddr{0x92, 0xd0, 0xc6, 0x0a, 0x29, 0x33}
	base := func(t dhcpv4.MessageType, yi net.IP, mods ...dhcpv4.Modifier) []byte {
		m, err := dhcpv4.New(append([]dhcpv4.Modifier{
			dhcpv4.WithMessageType(t), dhcpv4.WithYourIP(yi), dhcpv4.WithHwAddr(mac),
			dhcpv4.WithTransactionID(dhcpv4.TransactionID{0xde, 0xad, 0xbe, 0xef}),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(192, 168, 1, 1))),
		}, mods...)...)
		if err != nil {
			return nil
		}
		m.OpCode = dhcpv4.OpcodeBootReply
		return m.ToBytes()
	}
	return [][]byte{
		base(dhcpv4.MessageTypeAck, net.IPv4(192, 168, 1, 57),
			dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(12*time.Hour)),
			dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(6*time.Hour)),
			dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(10*time.Hour+30*time.Minute)),
			dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32))),
			dhcpv4.WithOption(dhcpv4.OptBroadcastAddress(net.IPv4(192, 168, 1, 255))),
			dhcpv4.WithRouter(net.IPv4(192, 168, 1, 1)),
			dhcpv4.WithDNS(net.IPv4(192, 168, 1, 1)),
			dhcpv4.WithOption(dhcpv4.OptDomainName("lan")),
			dhcpv4.WithOption(dhcpv4.OptHostName("web"))),
		base(dhcpv4.MessageTypeAck, net.IPv4(10, 1, 2, 3),
			dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(time.Hour)),
			dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(16, 32))),
			dhcpv4.WithOption(dhcpv4.OptClasslessStaticRoute(
				&dhcpv4.Route{Dest: &net.IPNet{IP: net.IPv4(0, 0, 0, 0), Mask: net.CIDRMask(0, 32)}, Router: net.IPv4(10, 1, 0, 1)},
				&dhcpv4.Route{Dest: &net.IPNet{IP: net.IPv4(172, 16, 0, 0), Mask: net.CIDRMask(12, 32)}, Router: net.IPv4(10, 1, 0, 2)})),
			dhcpv4.WithOption(dhcpv4.Option{Code: dhcpv4.OptionInterfaceMTU, Value: dhcpv4.Uint16(1500)}),
			dhcpv4.WithOption(dhcpv4.OptNTPServers(net.IPv4(10, 1, 0, 123)))),
		base(dhcpv4.MessageTypeAck, net.IPv4(198, 18, 0, 9),
			dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(Infinite))),
		base(dhcpv4.MessageTypeOffer, net.IPv4(192, 168, 1, 57),
			dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(time.Hour))),
	}
}

// FuzzFromACK: no DHCP reply makes the lease reader panic. A lease read
// from an ACK has a usable IPv4 address and prefix, times with
// 0 < T1 < T2 < lease time (or an infinite lease), phases in order, and
// the stored ACK reads back to the same lease.
func FuzzFromACK(f *testing.F) {
	for _, b := range fuzzACKs() {
		f.Add(b)
	}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		m, err := dhcpv4.FromBytes(pkt)
		if err != nil {
			return
		}
		l, err := FromACK(m, t0)
		if err != nil {
			return
		}
		if a := l.Addr.Addr(); !a.Is4() || a.IsUnspecified() || l.Addr.Bits() < 1 || l.Addr.Bits() > 32 {
			t.Fatalf("lease address %v accepted", l.Addr)
		}
		if l.Duration <= 0 {
			t.Fatalf("lease time %v", l.Duration)
		}
		var tm Timing
		if l.Duration != Infinite {
			if !(0 < l.T1 && l.T1 < l.T2 && l.T2 < l.Duration) {
				t.Fatalf("times T1 %v T2 %v lease %v out of order", l.T1, l.T2, l.Duration)
			}
			if tm.Phase(l, t0) != Bound || tm.Phase(l, tm.RenewAt(l)) != Renewing || tm.Phase(l, tm.RebindAt(l)) != Rebinding || tm.Phase(l, tm.ExpiresAt(l)) != Expired {
				t.Fatalf("phases out of order for %+v", l)
			}
			if r := tm.Retry(l, t0, time.Second); r.Before(t0) || r.After(tm.RenewAt(l)) {
				t.Fatalf("retry at %v outside the bound phase", r)
			}
		}
		stored, err := l.Message()
		if err != nil {
			t.Fatalf("stored ACK does not decode: %v", err)
		}
		again, err := FromACK(stored, t0)
		if err != nil || !reflect.DeepEqual(again, l) {
			t.Fatalf("stored ACK reads as %+v, %v; want %+v", again, err, l)
		}
	})
}

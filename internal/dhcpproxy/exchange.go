package dhcpproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/dhcp"
	"github.com/berthnet/berth/internal/netns"
)

// nsExchanger runs DHCP transactions on a container interface. Every
// transaction opens a packet socket inside the container's namespace
// (through netns.Do, so the socket stays bound to that namespace while the
// goroutines that use it run anywhere) and closes it when done: no socket
// copies the container's traffic between renewals.
type nsExchanger struct {
	nsPath string
	ifname string
	mac    net.HardwareAddr
	// firstTry is the first retransmission timeout; it doubles per try.
	firstTry time.Duration
}

// dhcpFilter passes only unfragmented UDP to port 68 (the socket sees IP
// packets without the link header).
var dhcpFilter = mustAssemble([]bpf.Instruction{
	bpf.LoadAbsolute{Off: 9, Size: 1},                                    // IP protocol
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_UDP, SkipFalse: 6}, // not UDP: drop
	bpf.LoadAbsolute{Off: 6, Size: 2},                                    // flags, fragment offset
	bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 4},          // a later fragment: drop
	bpf.LoadMemShift{Off: 0},                                             // X = IP header length
	bpf.LoadIndirect{Off: 2, Size: 2},                                    // UDP destination port
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: nclient4.ClientPort, SkipFalse: 1},
	bpf.RetConstant{Val: 1 << 16},
	bpf.RetConstant{Val: 0},
})

func mustAssemble(p []bpf.Instruction) []bpf.RawInstruction {
	raw, err := bpf.Assemble(p)
	if err != nil {
		panic(err)
	}
	return raw
}

// splitConn reads with one view of a raw socket and writes with another:
// replies may come to the broadcast address, but requests from a bound
// client carry its address as the source.
type splitConn struct {
	net.PacketConn
	w net.PacketConn
}

func (c splitConn) WriteTo(b []byte, addr net.Addr) (int, error) { return c.w.WriteTo(b, addr) }

// client opens a DHCP client on the interface; src is the source address
// of requests (the leased address when renewing or releasing).
func (e *nsExchanger) client(src netip.Addr, server *net.UDPAddr) (*nclient4.Client, error) {
	ns, err := netns.Open(e.nsPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %w", dhcp.ErrGone, err)
		}
		return nil, err
	}
	defer ns.Close()
	var raw *packet.Conn
	err = ns.Do(func() error {
		ifc, err := net.InterfaceByName(e.ifname)
		if err != nil {
			return fmt.Errorf("%w: find interface %s: %w", dhcp.ErrGone, e.ifname, err)
		}
		raw, err = packet.Listen(ifc, packet.Datagram, unix.ETH_P_IP, &packet.Config{Filter: dhcpFilter})
		if err != nil {
			return fmt.Errorf("open packet socket on %s: %w", e.ifname, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var conn net.PacketConn = nclient4.NewBroadcastUDPConn(raw, &net.UDPAddr{Port: nclient4.ClientPort})
	if src.IsValid() {
		conn = splitConn{PacketConn: conn, w: nclient4.NewBroadcastUDPConn(raw, &net.UDPAddr{IP: src.AsSlice(), Port: nclient4.ClientPort})}
	}
	first := e.firstTry
	if first <= 0 {
		first = time.Second
	}
	opts := []nclient4.ClientOpt{nclient4.WithTimeout(first), nclient4.WithRetry(-1)}
	if server != nil {
		opts = append(opts, nclient4.WithServerAddr(server))
	}
	c, err := nclient4.NewWithConn(conn, e.mac, opts...)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("start dhcp client on %s: %w", e.ifname, err)
	}
	return c, nil
}

// answerErr maps the client library's timeouts to dhcp.ErrNoAnswer and its
// DHCPNAK to dhcp.ErrNAK.
func answerErr(err error) error {
	var nak *nclient4.ErrNak
	switch {
	case errors.As(err, &nak):
		return fmt.Errorf("%w: %s", dhcp.ErrNAK, nak.Nak.Message())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nclient4.ErrNoResponse):
		return dhcp.ErrNoAnswer
	}
	return err
}

// Acquire implements dhcp.Exchanger.
func (e *nsExchanger) Acquire(ctx context.Context, id dhcp.Identity) (*dhcp.Lease, error) {
	c, err := e.client(netip.Addr{}, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	mods := id.Modifiers()
	for {
		offer, err := c.DiscoverOffer(ctx, mods...)
		if err != nil {
			return nil, answerErr(err)
		}
		sent := time.Now()
		lease, err := c.RequestFromOffer(ctx, offer, mods...)
		var nak *nclient4.ErrNak
		if errors.As(err, &nak) && ctx.Err() == nil {
			// RFC 2131 §3.1: after a DHCPNAK start over. A server that
			// offered one address to two clients at once refuses the
			// second request.
			continue
		}
		if err != nil {
			return nil, answerErr(err)
		}
		return dhcp.FromACK(lease.ACK, sent)
	}
}

// Extend implements dhcp.Exchanger: a DHCPREQUEST with ciaddr set,
// unicast to the server (RENEWING) or broadcast (REBINDING).
func (e *nsExchanger) Extend(ctx context.Context, id dhcp.Identity, l *dhcp.Lease, rebind bool) (*dhcp.Lease, error) {
	ack, err := l.Message()
	if err != nil {
		return nil, err
	}
	server := &net.UDPAddr{IP: l.Server.AsSlice(), Port: nclient4.ServerPort}
	if rebind || !l.Server.IsValid() {
		server = &net.UDPAddr{IP: net.IPv4bcast, Port: nclient4.ServerPort}
	}
	c, err := e.client(l.Addr.Addr(), server)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	xid, err := dhcpv4.GenerateTransactionID()
	if err != nil {
		return nil, err
	}
	req, err := dhcpv4.NewRenewFromAck(ack, append(id.Modifiers(), dhcpv4.WithHwAddr(e.mac), dhcpv4.WithTransactionID(xid))...)
	if err != nil {
		return nil, fmt.Errorf("build DHCPREQUEST: %w", err)
	}
	sent := time.Now()
	resp, err := c.SendAndRead(ctx, server, req, nclient4.IsMessageType(dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak))
	if err != nil {
		return nil, answerErr(err)
	}
	if resp.MessageType() == dhcpv4.MessageTypeNak {
		return nil, fmt.Errorf("%w: %s", dhcp.ErrNAK, resp.Message())
	}
	next, err := dhcp.FromACK(resp, sent)
	if err != nil {
		return nil, err
	}
	// Some servers leave options out of a renewal's ACK: keep what the
	// lease had.
	if len(next.Gateways) == 0 && len(next.Routes) == 0 {
		next.Gateways, next.Routes = l.Gateways, l.Routes
	}
	if len(next.DNS) == 0 {
		next.DNS = l.DNS
	}
	if next.Domain == "" {
		next.Domain = l.Domain
	}
	if len(next.NTP) == 0 {
		next.NTP = l.NTP
	}
	return next, nil
}

// Release implements dhcp.Exchanger: a DHCPRELEASE unicast to the server.
func (e *nsExchanger) Release(id dhcp.Identity, l *dhcp.Lease) error {
	ack, err := l.Message()
	if err != nil {
		return err
	}
	c, err := e.client(l.Addr.Addr(), nil)
	if err != nil {
		return err
	}
	defer c.Close()
	xid, err := dhcpv4.GenerateTransactionID()
	if err != nil {
		return err
	}
	mods := append(id.Modifiers(), dhcpv4.WithTransactionID(xid))
	if err := c.Release(&nclient4.Lease{ACK: ack, Offer: ack}, mods...); err != nil {
		return fmt.Errorf("send DHCPRELEASE for %s: %w", l.Addr.Addr(), err)
	}
	return nil
}

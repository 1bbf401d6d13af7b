package usernet

import (
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// linkTap sits between the TAP endpoint and the stack. It takes the
// packets the stack must not answer itself: echo requests to addresses
// outside the stack (relayed to the real destination through the host)
// and IPv6 router solicitations (answered with a router advertisement).
type linkTap struct {
	nested.Endpoint
	st *Stack
}

func newLinkTap(st *Stack, child stack.LinkEndpoint) *linkTap {
	l := &linkTap{st: st}
	l.Init(child, l)
	return l
}

// DeliverNetworkPacket implements stack.NetworkDispatcher.
func (l *linkTap) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	switch proto {
	case header.ARPProtocolNumber:
		if l.st.cfg.Pasta != nil && l.st.answerARP(pkt) {
			return
		}
	case header.IPv4ProtocolNumber:
		if l.st.interceptIPv4(pkt) {
			return
		}
	case header.IPv6ProtocolNumber:
		if l.st.cfg.IPv6 && l.st.interceptIPv6(pkt) {
			return
		}
	}
	l.Endpoint.DeliverNetworkPacket(proto, pkt)
}

// srcMAC returns the Ethernet source address of an inbound packet.
func srcMAC(pkt *stack.PacketBuffer) net.HardwareAddr {
	eth := header.Ethernet(pkt.LinkHeader().Slice())
	if len(eth) < header.EthernetMinimumSize {
		return nil
	}
	return net.HardwareAddr(eth.SourceAddress())
}

// interceptIPv4 reports whether it took pkt: an echo request for an
// address the stack does not own.
func (st *Stack) interceptIPv4(pkt *stack.PacketBuffer) bool {
	b, ok := pkt.Data().PullUp(header.IPv4MinimumSize)
	if !ok {
		return false
	}
	ip := header.IPv4(b)
	if ip.Protocol() != uint8(header.ICMPv4ProtocolNumber) || ip.More() || ip.FragmentOffset() != 0 {
		return false
	}
	hl := int(ip.HeaderLength())
	full, ok := pkt.Data().PullUp(pkt.Data().Size())
	if !ok || hl < header.IPv4MinimumSize || len(full) < hl+header.ICMPv4MinimumSize || int(ip.TotalLength()) > len(full) {
		return false
	}
	full = full[:ip.TotalLength()]
	icmpb := header.ICMPv4(full[hl:])
	if icmpb.Type() != header.ICMPv4Echo {
		return false
	}
	dst, src := toAddr(ip.DestinationAddress()), toAddr(ip.SourceAddress())
	if st.cfg.answersEcho(dst) {
		return false // the stack answers for itself
	}
	if _, ok := st.cfg.Translate(dst); !ok {
		return true
	}
	st.ping.echo(echoRequest{
		mac: srcMAC(pkt), src: src, dst: dst,
		id: icmpb.Ident(), seq: icmpb.Sequence(),
		payload: append([]byte(nil), full[hl+header.ICMPv4MinimumSize:]...),
	})
	return true
}

// interceptIPv6 reports whether it took pkt: an echo request for an
// address the stack does not own, or a router solicitation.
func (st *Stack) interceptIPv6(pkt *stack.PacketBuffer) bool {
	b, ok := pkt.Data().PullUp(header.IPv6MinimumSize + header.ICMPv6HeaderSize)
	if !ok {
		return false
	}
	ip := header.IPv6(b)
	if ip.NextHeader() != uint8(header.ICMPv6ProtocolNumber) {
		return false
	}
	icmpb := header.ICMPv6(b[header.IPv6MinimumSize:])
	switch icmpb.Type() {
	case header.ICMPv6RouterSolicit:
		if st.cfg.Pasta == nil {
			st.sendRA()
		}
		return false
	case header.ICMPv6NeighborSolicit:
		if st.cfg.Pasta != nil {
			return st.answerNS(pkt, ip)
		}
		return false
	case header.ICMPv6EchoRequest:
	default:
		return false
	}
	dst, src := toAddr(ip.DestinationAddress()), toAddr(ip.SourceAddress())
	if st.cfg.answersEcho(dst) || dst.IsLinkLocalUnicast() || dst.IsMulticast() {
		return false
	}
	if _, ok := st.cfg.Translate(dst); !ok {
		return true
	}
	full, ok := pkt.Data().PullUp(pkt.Data().Size())
	if !ok || len(full) < header.IPv6MinimumSize+int(ip.PayloadLength()) || int(ip.PayloadLength()) < header.ICMPv6EchoMinimumSize {
		return true
	}
	e := header.ICMPv6(full[header.IPv6MinimumSize : header.IPv6MinimumSize+int(ip.PayloadLength())])
	st.ping.echo(echoRequest{
		mac: srcMAC(pkt), src: src, dst: dst,
		id: e.Ident(), seq: e.Sequence(),
		payload: append([]byte(nil), e[header.ICMPv6EchoMinimumSize:]...),
	})
	return true
}

// writeFrame sends a complete Ethernet frame to the guest.
func (st *Stack) writeFrame(proto tcpip.NetworkProtocolNumber, frame []byte) {
	_ = st.s.WriteRawPacket(nicID, proto, buffer.MakeWithData(frame))
}

func ethHeader(dst, src net.HardwareAddr, proto tcpip.NetworkProtocolNumber) []byte {
	b := make([]byte, header.EthernetMinimumSize)
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:14], uint16(proto))
	return b
}

// echoReplyFrame builds the frame carrying an echo reply from dst to the
// guest at src.
func (st *Stack) echoReplyFrame(req echoRequest, seq uint16, payload []byte) (tcpip.NetworkProtocolNumber, []byte) {
	if req.dst.Is4() {
		icmpLen := header.ICMPv4MinimumSize + len(payload)
		frame := ethHeader(req.mac, st.cfg.MAC, header.IPv4ProtocolNumber)
		pkt := make([]byte, header.IPv4MinimumSize+icmpLen)
		ip := header.IPv4(pkt)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(pkt)),
			TTL:         64,
			Protocol:    uint8(header.ICMPv4ProtocolNumber),
			SrcAddr:     fromAddr(req.dst),
			DstAddr:     fromAddr(req.src),
		})
		ip.SetChecksum(^ip.CalculateChecksum())
		ic := header.ICMPv4(pkt[header.IPv4MinimumSize:])
		ic.SetType(header.ICMPv4EchoReply)
		ic.SetIdent(req.id)
		ic.SetSequence(seq)
		copy(ic[header.ICMPv4MinimumSize:], payload)
		ic.SetChecksum(^checksum.Checksum(ic, 0))
		return header.IPv4ProtocolNumber, append(frame, pkt...)
	}
	icmpLen := header.ICMPv6EchoMinimumSize + len(payload)
	frame := ethHeader(req.mac, st.cfg.MAC, header.IPv6ProtocolNumber)
	pkt := make([]byte, header.IPv6MinimumSize+icmpLen)
	header.IPv6(pkt).Encode(&header.IPv6Fields{
		PayloadLength:     uint16(icmpLen),
		TransportProtocol: header.ICMPv6ProtocolNumber,
		HopLimit:          64,
		SrcAddr:           fromAddr(req.dst),
		DstAddr:           fromAddr(req.src),
	})
	ic := header.ICMPv6(pkt[header.IPv6MinimumSize:])
	ic.SetType(header.ICMPv6EchoReply)
	ic.SetIdent(req.id)
	ic.SetSequence(seq)
	copy(ic[header.ICMPv6EchoMinimumSize:], payload)
	ic.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{
		Header: ic, Src: fromAddr(req.dst), Dst: fromAddr(req.src),
	}))
	return header.IPv6ProtocolNumber, append(frame, pkt...)
}

// sendRA multicasts a router advertisement: the stack as default router,
// the IPv6 prefix for address autoconfiguration, the MTU, and the DNS
// forwarder (RDNSS).
func (st *Stack) sendRA() {
	var opts []byte
	// Source link-layer address.
	opts = append(opts, 1, 1)
	opts = append(opts, st.cfg.MAC...)
	// MTU.
	mtu := make([]byte, 8)
	mtu[0], mtu[1] = 5, 1
	binary.BigEndian.PutUint32(mtu[4:], uint32(st.cfg.MTU))
	opts = append(opts, mtu...)
	// Prefix information: on-link, autonomous.
	pi := make([]byte, 32)
	pi[0], pi[1], pi[2], pi[3] = 3, 4, 64, 0xc0
	binary.BigEndian.PutUint32(pi[4:], 86400)
	binary.BigEndian.PutUint32(pi[8:], 14400)
	p16 := st.cfg.IPv6Prefix.Addr().As16()
	copy(pi[16:], p16[:])
	opts = append(opts, pi...)
	if !st.cfg.DisableDNS {
		rd := make([]byte, 24)
		rd[0], rd[1] = 25, 3
		binary.BigEndian.PutUint32(rd[4:], 1800)
		d16 := st.cfg.DNS6().As16()
		copy(rd[8:], d16[:])
		opts = append(opts, rd...)
	}
	icmpLen := header.ICMPv6HeaderSize + 12 + len(opts)
	pkt := make([]byte, header.IPv6MinimumSize+icmpLen)
	src, dst := fromAddr(st.cfg.RouterLinkLocal()), fromAddr(netip.MustParseAddr("ff02::1"))
	header.IPv6(pkt).Encode(&header.IPv6Fields{
		PayloadLength:     uint16(icmpLen),
		TransportProtocol: header.ICMPv6ProtocolNumber,
		HopLimit:          255,
		SrcAddr:           src,
		DstAddr:           dst,
	})
	ic := header.ICMPv6(pkt[header.IPv6MinimumSize:])
	ic.SetType(header.ICMPv6RouterAdvert)
	ra := ic[header.ICMPv6HeaderSize:]
	ra[0] = 64                                // current hop limit
	binary.BigEndian.PutUint16(ra[2:4], 1800) // router lifetime
	copy(ra[12:], opts)
	ic.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: ic, Src: src, Dst: dst}))
	frame := ethHeader(net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}, st.cfg.MAC, header.IPv6ProtocolNumber)
	st.writeFrame(header.IPv6ProtocolNumber, append(frame, pkt...))
}

// advertiseRouter sends router advertisements a few times at start (the
// guest may bring its link up before or after) and then every minute.
func (st *Stack) advertiseRouter() {
	defer st.wg.Done()
	delays := []time.Duration{0, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}
	for i := 0; ; i++ {
		d := time.Minute
		if i < len(delays) {
			d = delays[i]
		}
		select {
		case <-st.ctx.Done():
			return
		case <-time.After(d):
		}
		st.sendRA()
	}
}

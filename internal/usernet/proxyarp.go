package usernet

import (
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Under pasta's model the guest has the host's address and prefix, so it
// takes every address of that prefix for a neighbour on its link and asks
// for it (ARP, IPv6 neighbour solicitation). The stack stands for all of
// them, as pasta does: it answers every such question with its own link
// address, but for the guest's own address (duplicate address checks must
// go unanswered).

// answerARP reports whether it took pkt, an ARP packet: a request for any
// address but the guest's is answered with the stack's link address.
func (st *Stack) answerARP(pkt *stack.PacketBuffer) bool {
	b, ok := pkt.Data().PullUp(header.ARPSize)
	if !ok {
		return false
	}
	req := header.ARP(b)
	if !req.IsValid() || req.Op() != header.ARPRequest {
		return false
	}
	target, _ := netip.AddrFromSlice(req.ProtocolAddressTarget())
	sender, _ := netip.AddrFromSlice(req.ProtocolAddressSender())
	if target == sender || st.cfg.Pasta.isGuest(target) {
		return true // a probe or an announcement: nobody answers it
	}
	frame := ethHeader(net.HardwareAddr(req.HardwareAddressSender()), st.cfg.MAC, header.ARPProtocolNumber)
	reply := header.ARP(make([]byte, header.ARPSize))
	reply.SetIPv4OverEthernet()
	reply.SetOp(header.ARPReply)
	copy(reply.HardwareAddressSender(), st.cfg.MAC)
	copy(reply.ProtocolAddressSender(), req.ProtocolAddressTarget())
	copy(reply.HardwareAddressTarget(), req.HardwareAddressSender())
	copy(reply.ProtocolAddressTarget(), req.ProtocolAddressSender())
	st.writeFrame(header.ARPProtocolNumber, append(frame, reply...))
	return true
}

// answerNS answers an IPv6 neighbour solicitation for any address but the
// guest's and the stack's own (the stack answers for those itself); it
// reports whether it took the packet.
func (st *Stack) answerNS(pkt *stack.PacketBuffer, ip header.IPv6) bool {
	full, ok := pkt.Data().PullUp(pkt.Data().Size())
	if !ok || len(full) < header.IPv6MinimumSize+header.ICMPv6NeighborSolicitMinimumSize {
		return false
	}
	ns := header.NDPNeighborSolicit(full[header.IPv6MinimumSize+header.ICMPv6HeaderSize:])
	target := toAddr(ns.TargetAddress())
	src := toAddr(ip.SourceAddress())
	if st.cfg.Pasta.isGuest(target) || src.IsUnspecified() {
		return true // duplicate address detection: nobody answers it
	}
	for _, a := range st.cfg.Pasta.own() {
		if a == target {
			return false
		}
	}
	icmpLen := header.ICMPv6NeighborAdvertMinimumSize + 8
	b := make([]byte, header.IPv6MinimumSize+icmpLen)
	header.IPv6(b).Encode(&header.IPv6Fields{
		PayloadLength:     uint16(icmpLen),
		TransportProtocol: header.ICMPv6ProtocolNumber,
		HopLimit:          header.NDPHopLimit,
		SrcAddr:           fromAddr(target),
		DstAddr:           fromAddr(src),
	})
	ic := header.ICMPv6(b[header.IPv6MinimumSize:])
	ic.SetType(header.ICMPv6NeighborAdvert)
	na := header.NDPNeighborAdvert(ic.MessageBody())
	na.SetSolicitedFlag(true)
	na.SetOverrideFlag(true)
	na.SetTargetAddress(fromAddr(target))
	opt := ic[header.ICMPv6NeighborAdvertMinimumSize:]
	opt[0], opt[1] = 2, 1 // target link-layer address, 8 bytes
	copy(opt[2:], st.cfg.MAC)
	ic.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: ic, Src: fromAddr(target), Dst: fromAddr(src)}))
	frame := ethHeader(srcMAC(pkt), st.cfg.MAC, header.IPv6ProtocolNumber)
	st.writeFrame(header.IPv6ProtocolNumber, append(frame, b...))
	return true
}

package usernet

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// A TAP opened with IFF_VNET_HDR puts a struct virtio_net_hdr
// (linux/virtio_net.h) before every frame, in both directions. It says
// whether the frame's transport checksum is still to be filled in and
// whether the frame is a TCP super-segment the receiver may cut into
// segments of gsoSize payload bytes. The TAP is switched to little-endian
// headers (TUNSETVNETLE), so the layout is the same on every host.
const vnetHdrSize = 10

// Values of the header's fields (linux/virtio_net.h).
const (
	vnetFlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM

	vnetGSONone  = 0 // VIRTIO_NET_HDR_GSO_NONE
	vnetGSOTCPv4 = 1 // VIRTIO_NET_HDR_GSO_TCPV4
	vnetGSOUDP   = 3 // VIRTIO_NET_HDR_GSO_UDP
	vnetGSOTCPv6 = 4 // VIRTIO_NET_HDR_GSO_TCPV6
	vnetGSOUDPL4 = 5 // VIRTIO_NET_HDR_GSO_UDP_L4
	vnetGSOECN   = 0x80
)

// vnetHdr is a decoded struct virtio_net_hdr.
type vnetHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

// encode writes h into b (at least vnetHdrSize bytes).
func (h vnetHdr) encode(b []byte) {
	b[0] = h.flags
	b[1] = h.gsoType
	binary.LittleEndian.PutUint16(b[2:], h.hdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.gsoSize)
	binary.LittleEndian.PutUint16(b[6:], h.csumStart)
	binary.LittleEndian.PutUint16(b[8:], h.csumOffset)
}

// decodeVnetHdr reads the header at the start of b; ok is false when b is
// too short.
func decodeVnetHdr(b []byte) (h vnetHdr, ok bool) {
	if len(b) < vnetHdrSize {
		return h, false
	}
	return vnetHdr{
		flags:      b[0],
		gsoType:    b[1],
		hdrLen:     binary.LittleEndian.Uint16(b[2:]),
		gsoSize:    binary.LittleEndian.Uint16(b[4:]),
		csumStart:  binary.LittleEndian.Uint16(b[6:]),
		csumOffset: binary.LittleEndian.Uint16(b[8:]),
	}, true
}

// acceptable reports whether a frame the guest sent with header h may be
// handed to the stack as one packet. A TCP super-segment may: its IP
// header covers the whole payload and TCP does not care how the byte
// stream is cut. A UDP super-packet (UFO, USO) may not: it stands for
// several datagrams. The TAP is not told to accept those, so they are
// not expected; they are dropped rather than misread.
func (h vnetHdr) acceptable() bool {
	switch h.gsoType &^ vnetGSOECN {
	case vnetGSONone, vnetGSOTCPv4, vnetGSOTCPv6:
		return true
	default:
		return false
	}
}

// vnetHdrFor returns the header for a frame the stack sends: for a TCP
// packet of an endpoint using host GSO, its transport checksum is left for
// the guest's kernel to fill in (or, which is what it does for a frame
// from a TAP, to accept as is) and, when its payload is longer than the
// MSS, it is marked as a super-segment. Other frames are complete and get
// an all-zero header. headerSize is the size of the frame's headers
// (Ethernet, IP, TCP), dataSize that of its payload.
func vnetHdrFor(gso stack.GSO, headerSize, dataSize int) vnetHdr {
	var h vnetHdr
	if gso.Type != stack.GSOTCPv4 && gso.Type != stack.GSOTCPv6 {
		return h
	}
	h.hdrLen = uint16(headerSize)
	if gso.NeedsCsum {
		h.flags = vnetFlagNeedsCsum
		h.csumStart = header.EthernetMinimumSize + gso.L3HdrLen
		h.csumOffset = gso.CsumOffset
	}
	if gso.MSS != 0 && dataSize > int(gso.MSS) {
		h.gsoType = vnetGSOTCPv4
		if gso.Type == stack.GSOTCPv6 {
			h.gsoType = vnetGSOTCPv6
		}
		h.gsoSize = gso.MSS
	}
	return h
}

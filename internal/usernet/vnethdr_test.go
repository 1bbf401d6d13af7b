package usernet

import (
	"bytes"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

func TestVnetHdrEncodeDecode(t *testing.T) {
	h := vnetHdr{flags: vnetFlagNeedsCsum, gsoType: vnetGSOTCPv6, hdrLen: 86, gsoSize: 1440, csumStart: 54, csumOffset: 16}
	var b [vnetHdrSize]byte
	h.encode(b[:])
	want := []byte{1, 4, 86, 0, 0xa0, 0x05, 54, 0, 16, 0}
	if !bytes.Equal(b[:], want) {
		t.Fatalf("encoded % x, want % x", b, want)
	}
	got, ok := decodeVnetHdr(b[:])
	if !ok || got != h {
		t.Fatalf("decoded %+v %v, want %+v", got, ok, h)
	}
	if _, ok := decodeVnetHdr(b[:vnetHdrSize-1]); ok {
		t.Fatal("short header decoded")
	}
}

func TestVnetHdrAcceptable(t *testing.T) {
	for _, c := range []struct {
		gso  uint8
		want bool
	}{
		{vnetGSONone, true},
		{vnetGSOTCPv4, true},
		{vnetGSOTCPv6, true},
		{vnetGSOTCPv4 | vnetGSOECN, true},
		{vnetGSOUDP, false},
		{vnetGSOUDPL4, false},
	} {
		if got := (vnetHdr{gsoType: c.gso}).acceptable(); got != c.want {
			t.Errorf("gso type %#x: acceptable %v, want %v", c.gso, got, c.want)
		}
	}
}

func TestVnetHdrFor(t *testing.T) {
	tcp4 := stack.GSO{Type: stack.GSOTCPv4, NeedsCsum: true, CsumOffset: header.TCPChecksumOffset, MSS: 1460, L3HdrLen: header.IPv4MinimumSize}
	tcp6 := tcp4
	tcp6.Type, tcp6.L3HdrLen = stack.GSOTCPv6, header.IPv6MinimumSize
	for _, c := range []struct {
		name      string
		gso       stack.GSO
		hdr, data int
		want      vnetHdr
	}{
		{"not TCP", stack.GSO{}, 42, 100, vnetHdr{}},
		{"gVisor GSO", stack.GSO{Type: stack.GSOGvisor, MSS: 1460}, 54, 5000, vnetHdr{}},
		{"one segment", tcp4, 54, 1460, vnetHdr{flags: vnetFlagNeedsCsum, hdrLen: 54, csumStart: 34, csumOffset: 16}},
		{"ack", tcp4, 66, 0, vnetHdr{flags: vnetFlagNeedsCsum, hdrLen: 66, csumStart: 34, csumOffset: 16}},
		{"super-segment v4", tcp4, 66, 64000, vnetHdr{flags: vnetFlagNeedsCsum, gsoType: vnetGSOTCPv4, hdrLen: 66, gsoSize: 1460, csumStart: 34, csumOffset: 16}},
		{"super-segment v6", tcp6, 86, 4000, vnetHdr{flags: vnetFlagNeedsCsum, gsoType: vnetGSOTCPv6, hdrLen: 86, gsoSize: 1460, csumStart: 54, csumOffset: 16}},
	} {
		if got := vnetHdrFor(c.gso, c.hdr, c.data); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

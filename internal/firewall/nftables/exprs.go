package nftables

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Registers: NFT_REG_1 is the 16-byte register 1; NFT_REG32_00.. are the
// 4-byte registers that concatenations use (8 = 32-bit register 0).
const (
	reg1    = 1
	reg32x0 = 8
)

// Header offsets.
const (
	ip4Saddr = 12
	ip4Daddr = 16
	ip6Saddr = 8
	ip6Daddr = 24
)

func family(a netip.Addr) byte {
	if a.Is4() {
		return unix.NFPROTO_IPV4
	}
	return unix.NFPROTO_IPV6
}

// matchFamily: meta nfproto ipv4|ipv6.
func matchFamily(f byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{f}},
	}
}

// matchPrefix: ip saddr|daddr [!=] prefix. The family must be matched first.
func matchPrefix(p netip.Prefix, src bool, neq bool) []expr.Any {
	p = p.Masked()
	off, ln := uint32(ip4Daddr), uint32(4)
	if p.Addr().Is4() {
		if src {
			off = ip4Saddr
		}
	} else {
		off, ln = ip6Daddr, 16
		if src {
			off = ip6Saddr
		}
	}
	op := expr.CmpOpEq
	if neq {
		op = expr.CmpOpNeq
	}
	addr := p.Addr().AsSlice()
	mask := make([]byte, ln)
	for i := 0; i < p.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	exprs := []expr.Any{&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: ln}}
	if p.Bits() < int(ln)*8 {
		exprs = append(exprs, &expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: ln, Mask: mask, Xor: make([]byte, ln)})
	}
	return append(exprs, &expr.Cmp{Op: op, Register: reg1, Data: addr})
}

// matchCtStatusDNAT: ct status dnat.
func matchCtStatusDNAT() []expr.Any {
	le := binary.NativeEndian
	mask := make([]byte, 4)
	le.PutUint32(mask, 0x20) // IPS_DST_NAT
	return []expr.Any{
		&expr.Ct{Register: reg1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: make([]byte, 4)},
	}
}

// matchCtState: ct state established,related.
func matchCtEstablished() []expr.Any {
	le := binary.NativeEndian
	mask := make([]byte, 4)
	le.PutUint32(mask, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)
	return []expr.Any{
		&expr.Ct{Register: reg1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: make([]byte, 4)},
	}
}

// ifname pads an interface name to the 16 bytes nftables compares.
func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

// matchIf: iifname|oifname [!=] name.
func matchIf(key expr.MetaKey, name string, neq bool) []expr.Any {
	op := expr.CmpOpEq
	if neq {
		op = expr.CmpOpNeq
	}
	return []expr.Any{
		&expr.Meta{Key: key, Register: reg1},
		&expr.Cmp{Op: op, Register: reg1, Data: ifname(name)},
	}
}

// matchIfSet: oifname @set.
func matchIfSet(key expr.MetaKey, set *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: reg1},
		&expr.Lookup{SourceRegister: reg1, SetName: set.Name, SetID: set.ID},
	}
}

// matchFibLocal: fib daddr type local.
func matchFibLocal() []expr.Any {
	data := make([]byte, 4)
	binary.NativeEndian.PutUint32(data, unix.RTN_LOCAL)
	return []expr.Any{
		&expr.Fib{Register: reg1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: data},
	}
}

// matchL4Dport: meta l4proto P th dport N.
func matchL4Dport(proto byte, port uint16) []expr.Any {
	p := make([]byte, 2)
	binary.BigEndian.PutUint16(p, port)
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{proto}},
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: p},
	}
}

// dnatMap: dnat ip[6] to [ip daddr .] meta l4proto . th dport map @m.
func dnatMap(f byte, withAddr bool, m *nftables.Set) []expr.Any {
	var exprs []expr.Any
	r := uint32(reg32x0)
	if withAddr {
		off, ln := uint32(ip4Daddr), uint32(4)
		if f == unix.NFPROTO_IPV6 {
			off, ln = ip6Daddr, 16
		}
		exprs = append(exprs, &expr.Payload{DestRegister: r, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: ln})
		r += ln / 4
	}
	exprs = append(exprs,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: r},
		&expr.Payload{DestRegister: r + 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: reg32x0, SetName: m.Name, SetID: m.ID, DestRegister: reg1, IsDestRegSet: true},
	)
	protoReg := uint32(reg32x0 + 1)
	if f == unix.NFPROTO_IPV6 {
		protoReg = reg32x0 + 4
	}
	return append(exprs, &expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(f), RegAddrMin: reg1, RegProtoMin: protoReg, Specified: true})
}

func protoNum(p string) byte {
	switch p {
	case "udp":
		return unix.IPPROTO_UDP
	case "sctp":
		return unix.IPPROTO_SCTP
	}
	return unix.IPPROTO_TCP
}

// padded returns b followed by zero bytes up to a multiple of 4.
func padded(b ...byte) []byte {
	n := (len(b) + 3) &^ 3
	out := make([]byte, n)
	copy(out, b)
	return out
}

func port(p uint16) []byte {
	return padded(byte(p>>8), byte(p))
}

var verdictAccept = &expr.Verdict{Kind: expr.VerdictAccept}
var verdictDrop = &expr.Verdict{Kind: expr.VerdictDrop}

func jump(chain string) *expr.Verdict { return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain} }

func rule(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func one(e ...expr.Any) []expr.Any { return e }

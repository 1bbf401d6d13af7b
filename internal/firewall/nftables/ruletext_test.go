package nftables

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// describeRule writes a rule message the way `nft list` prints the rule,
// for the expressions this driver uses; any other expression shows as its
// Go type, so a test that expects nft syntax fails on it.
func describeRule(t *testing.T, m netlink.Message) string {
	t.Helper()
	r := decodeRule(t, m)
	s := (&ruleText{}).render(r.Exprs)
	if c, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok {
		s += fmt.Sprintf(" comment %q", strings.TrimRight(c, "\x00"))
	}
	return s
}

type ruleText struct {
	out  []string
	key  []string // parts of a map lookup's key
	imm  map[uint32][]byte
	maps string // the map of a lookup that feeds a NAT
}

func (rt *ruleText) render(es []expr.Any) string {
	rt.imm = map[uint32][]byte{}
	for i := 0; i < len(es); i++ {
		var next expr.Any
		if i+1 < len(es) {
			next = es[i+1]
		}
		i += rt.one(es[i], next, es[i+1:])
	}
	return strings.Join(rt.out, " ")
}

// one renders e and returns how many of the following expressions it
// consumed.
func (rt *ruleText) one(e, next expr.Any, rest []expr.Any) int {
	cmp, nextIsCmp := next.(*expr.Cmp)
	switch e := e.(type) {
	case *expr.Meta:
		return rt.meta(e, next, cmp, nextIsCmp)
	case *expr.Payload:
		return rt.payload(e, rest)
	case *expr.Ct:
		return rt.ct(e, rest)
	case *expr.Fib:
		if nextIsCmp && binary.NativeEndian.Uint32(cmp.Data) == unix.RTN_LOCAL {
			rt.out = append(rt.out, "fib daddr type local")
			return 1
		}
	case *expr.Lookup:
		if e.IsDestRegSet {
			rt.maps = e.SetName
			return 0
		}
	case *expr.Immediate:
		rt.imm[e.Register] = e.Data
		return 0
	case *expr.NAT:
		rt.out = append(rt.out, rt.nat(e))
		return 0
	case *expr.Masq:
		rt.out = append(rt.out, "masquerade")
		return 0
	case *expr.Verdict:
		rt.out = append(rt.out, verdict(e))
		return 0
	}
	rt.out = append(rt.out, fmt.Sprintf("%T", e))
	return 0
}

func (rt *ruleText) meta(e *expr.Meta, next expr.Any, cmp *expr.Cmp, isCmp bool) int {
	switch {
	case e.Key == expr.MetaKeyNFPROTO && isCmp:
		rt.out = append(rt.out, "meta nfproto "+map[byte]string{unix.NFPROTO_IPV4: "ipv4", unix.NFPROTO_IPV6: "ipv6"}[cmp.Data[0]])
		return 1
	case e.Key == expr.MetaKeyL4PROTO && isCmp:
		rt.out = append(rt.out, "meta l4proto "+protoName(cmp.Data[0]))
		return 1
	case e.Key == expr.MetaKeyL4PROTO:
		rt.key = append(rt.key, "meta l4proto")
		return 0
	case (e.Key == expr.MetaKeyIIFNAME || e.Key == expr.MetaKeyOIFNAME) && isCmp:
		rt.out = append(rt.out, ifKey(e.Key)+op(cmp.Op)+str(cmp.Data))
		return 1
	case e.Key == expr.MetaKeyIIFNAME || e.Key == expr.MetaKeyOIFNAME:
		if l, ok := next.(*expr.Lookup); ok {
			rt.out = append(rt.out, ifKey(e.Key)+" @"+l.SetName)
			return 1
		}
	}
	rt.out = append(rt.out, fmt.Sprintf("meta key %d", e.Key))
	return 0
}

func ifKey(k expr.MetaKey) string {
	if k == expr.MetaKeyIIFNAME {
		return "iifname"
	}
	return "oifname"
}

func op(o expr.CmpOp) string {
	if o == expr.CmpOpNeq {
		return " != "
	}
	return " "
}

// payload renders a header field and the comparison that follows it (a
// prefix when a mask comes first), or a part of a map key.
func (rt *ruleText) payload(e *expr.Payload, rest []expr.Any) int {
	field := "th dport"
	if e.Base == expr.PayloadBaseNetworkHeader {
		fam := map[uint32]string{4: "ip", 16: "ip6"}[e.Len]
		field = fam + " " + map[uint32]string{ip4Saddr: "saddr", ip4Daddr: "daddr", ip6Saddr: "saddr", ip6Daddr: "daddr"}[e.Offset]
	}
	var mask []byte
	n := 0
	if len(rest) > 0 {
		if b, ok := rest[0].(*expr.Bitwise); ok {
			mask, n = b.Mask, 1
		}
	}
	if len(rest) <= n {
		rt.key = append(rt.key, field)
		return 0
	}
	cmp, ok := rest[n].(*expr.Cmp)
	if !ok {
		rt.key = append(rt.key, field)
		return 0
	}
	var val string
	switch {
	case e.Base == expr.PayloadBaseTransportHeader:
		val = fmt.Sprint(binary.BigEndian.Uint16(cmp.Data))
	default:
		addr, _ := netip.AddrFromSlice(cmp.Data)
		val = addr.String()
		if mask != nil {
			ones := 0
			for _, b := range mask {
				ones += bits.OnesCount8(b)
			}
			val = netip.PrefixFrom(addr, ones).String()
		}
	}
	rt.out = append(rt.out, field+op(cmp.Op)+val)
	return n + 1
}

// ct renders `ct status dnat` and `ct state established,related` (a
// mask, then a comparison with zero).
func (rt *ruleText) ct(e *expr.Ct, rest []expr.Any) int {
	if len(rest) >= 2 {
		b, okb := rest[0].(*expr.Bitwise)
		c, okc := rest[1].(*expr.Cmp)
		if okb && okc && c.Op == expr.CmpOpNeq {
			m := binary.NativeEndian.Uint32(b.Mask)
			switch {
			case e.Key == expr.CtKeySTATUS && m == 0x20:
				rt.out = append(rt.out, "ct status dnat")
				return 2
			case e.Key == expr.CtKeySTATE && m == expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED:
				rt.out = append(rt.out, "ct state established,related")
				return 2
			}
		}
	}
	rt.out = append(rt.out, fmt.Sprintf("ct key %d", e.Key))
	return 0
}

func (rt *ruleText) nat(e *expr.NAT) string {
	fam := map[uint32]string{unix.NFPROTO_IPV4: "ip", unix.NFPROTO_IPV6: "ip6"}[e.Family]
	if e.Type != expr.NATTypeDestNAT {
		return fmt.Sprintf("nat type %d", e.Type)
	}
	if rt.maps != "" {
		return fmt.Sprintf("dnat %s to %s map @%s", fam, strings.Join(rt.key, " . "), rt.maps)
	}
	addr, _ := netip.AddrFromSlice(rt.imm[e.RegAddrMin])
	p := rt.imm[e.RegProtoMin]
	return fmt.Sprintf("dnat %s to %s", fam, netip.AddrPortFrom(addr, binary.BigEndian.Uint16(p)))
}

func verdict(v *expr.Verdict) string {
	switch v.Kind {
	case expr.VerdictAccept:
		return "accept"
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictJump:
		return "jump " + v.Chain
	}
	return fmt.Sprintf("verdict %d", v.Kind)
}

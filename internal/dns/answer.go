package dns

import (
	"net/netip"
	"strings"

	mdns "github.com/miekg/dns"
)

// TTL of local answers: containers come and go, so resolvers must not keep
// their addresses (aardvark-dns ≥ 1.13 answers with 0 as well).
const TTL = 0

// DefaultFilterDomain is the search domain Podman writes into resolv.conf.
const DefaultFilterDomain = ".dns.podman"

// decision is what to do with a query.
type decision int

const (
	answered decision = iota // reply is complete
	forward                  // send to upstream servers
)

// localName strips the trailing dot and the filter domain from a query name
// and reports whether the name was inside the filter domain.
func localName(qname, filter string) (string, bool) {
	name := strings.TrimSuffix(strings.ToLower(qname), ".")
	filter = strings.TrimSuffix(strings.ToLower(filter), ".")
	if filter != "" && !strings.HasPrefix(filter, ".") {
		filter = "." + filter
	}
	if filter != "" && strings.HasSuffix(name, filter) {
		return strings.TrimSuffix(name, filter), true
	}
	return name, false
}

// answer decides a query from the records alone. For a local answer it
// fills reply and returns answered; otherwise it returns forward, or
// answered with NXDOMAIN when forwarding is not allowed.
//
// A requester the scope does not allow gets REFUSED; an opcode other than
// QUERY (UPDATE, NOTIFY, ...) gets NOTIMP; a zone transfer (AXFR, IXFR)
// gets REFUSED. None of them is forwarded.
func answer(sc Scope, q *mdns.Msg, reply *mdns.Msg, filter string, noProxy bool) decision {
	reply.SetReply(q)
	reply.RecursionAvailable = sc.Allowed
	if o := q.IsEdns0(); o != nil {
		reply.SetEdns0(1232, false)
	}
	switch {
	case !sc.Allowed:
		reply.Rcode = mdns.RcodeRefused
		return answered
	case q.Opcode != mdns.OpcodeQuery:
		reply.Rcode = mdns.RcodeNotImplemented
		return answered
	case len(q.Question) != 1:
		reply.Rcode = mdns.RcodeFormatError
		return answered
	}
	qs := q.Question[0]
	if qs.Qtype == mdns.TypeAXFR || qs.Qtype == mdns.TypeIXFR {
		reply.Rcode = mdns.RcodeRefused
		return answered
	}
	name, inDomain := localName(qs.Name, filter)

	if qs.Qclass == mdns.ClassINET || qs.Qclass == mdns.ClassANY {
		switch qs.Qtype {
		case mdns.TypePTR:
			if ip, ok := reverseAddr(qs.Name); ok {
				if names := sc.Reverse(ip); len(names) > 0 {
					reply.Authoritative = true
					d := strings.TrimPrefix(strings.TrimSuffix(filter, "."), ".")
					for _, n := range names {
						target := n + "."
						if d != "" {
							target = n + "." + d + "."
						}
						reply.Answer = append(reply.Answer, &mdns.PTR{
							Hdr: mdns.RR_Header{Name: qs.Name, Rrtype: mdns.TypePTR, Class: mdns.ClassINET, Ttl: TTL},
							Ptr: target,
						})
					}
					return answered
				}
			}
		default:
			v6 := qs.Qtype == mdns.TypeAAAA
			ips, found := sc.Lookup(name, v6)
			if found {
				reply.Authoritative = true
				if qs.Qtype == mdns.TypeA || qs.Qtype == mdns.TypeAAAA {
					for _, ip := range ips {
						reply.Answer = append(reply.Answer, addrRR(qs.Name, ip))
					}
				}
				// Other types of a container name: NOERROR, no data.
				return answered
			}
		}
	}
	if inDomain || sc.Internal() || noProxy {
		reply.Rcode = mdns.RcodeNameError
		return answered
	}
	return forward
}

func addrRR(owner string, ip netip.Addr) mdns.RR {
	if ip.Is4() {
		return &mdns.A{Hdr: mdns.RR_Header{Name: owner, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: TTL}, A: ip.AsSlice()}
	}
	return &mdns.AAAA{Hdr: mdns.RR_Header{Name: owner, Rrtype: mdns.TypeAAAA, Class: mdns.ClassINET, Ttl: TTL}, AAAA: ip.AsSlice()}
}

// reverseAddr parses an in-addr.arpa or ip6.arpa name.
func reverseAddr(name string) (netip.Addr, bool) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	switch {
	case strings.HasSuffix(name, ".in-addr.arpa"):
		p := strings.Split(strings.TrimSuffix(name, ".in-addr.arpa"), ".")
		if len(p) != 4 {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(p[3] + "." + p[2] + "." + p[1] + "." + p[0])
		return a, err == nil
	case strings.HasSuffix(name, ".ip6.arpa"):
		p := strings.Split(strings.TrimSuffix(name, ".ip6.arpa"), ".")
		if len(p) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i := 0; i < 32; i++ {
			nib := p[31-i]
			if len(nib) != 1 {
				return netip.Addr{}, false
			}
			v := strings.IndexByte("0123456789abcdef", nib[0])
			if v < 0 {
				return netip.Addr{}, false
			}
			if i%2 == 0 {
				b[i/2] = byte(v) << 4
			} else {
				b[i/2] |= byte(v)
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

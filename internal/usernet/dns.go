package usernet

import (
	"context"
	"fmt"
	"net"
	"time"

	mdns "github.com/miekg/dns"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"

	"github.com/berthnet/berth/internal/dns"
)

// dnsTimeout is the budget of one forwarded query across all upstreams.
const dnsTimeout = 5 * time.Second

// startDNS serves DNS on port 53 of the DNS addresses inside the stack,
// over UDP and TCP, forwarding every query to the host's resolv.conf
// servers (re-read when the file changes), reached from the host side.
func (st *Stack) startDNS() error {
	st.fwd = dns.NewForwarder(dnsTimeout)
	st.fwd.Port = st.cfg.DNSPort
	st.resolv = &dns.ResolvConf{Path: st.cfg.ResolvConf}
	for _, dnsAddr := range st.cfg.dnsAddrs() {
		a := tcpip.FullAddress{NIC: nicID, Addr: fromAddr(dnsAddr), Port: 53}
		proto := protoOf(toAddr(a.Addr))
		pc, err := gonet.DialUDP(st.s, &a, nil, proto)
		if err != nil {
			return fmt.Errorf("listen dns udp %s: %w", toAddr(a.Addr), err)
		}
		ln, err := gonet.ListenTCP(st.s, a, proto)
		if err != nil {
			pc.Close()
			return fmt.Errorf("listen dns tcp %s: %w", toAddr(a.Addr), err)
		}
		for _, srv := range []*mdns.Server{
			{PacketConn: pc, Handler: mdns.HandlerFunc(st.serveDNS)},
			{Listener: ln, Handler: mdns.HandlerFunc(st.serveDNS)},
		} {
			st.dnsSrvs = append(st.dnsSrvs, srv)
			st.wg.Add(1)
			go func() {
				defer st.wg.Done()
				_ = srv.ActivateAndServe()
			}()
		}
	}
	return nil
}

// serveDNS answers one query from the upstream servers, or SERVFAIL.
func (st *Stack) serveDNS(w mdns.ResponseWriter, q *mdns.Msg) {
	reply := new(mdns.Msg)
	ctx, cancel := context.WithTimeout(st.ctx, dnsTimeout)
	defer cancel()
	r, err := st.fwd.Exchange(ctx, q, st.resolv.Servers())
	if err != nil && r != nil {
		// Every upstream refused or failed: the guest gets the verdict
		// as the upstream gave it (a query through pasta's or slirp's NAT
		// would), not a SERVFAIL of the stack's own.
		err = nil
	}
	if err != nil {
		if len(q.Question) > 0 {
			st.log.Debug("dns forward failed", "name", q.Question[0].Name, "err", err)
		}
		reply.SetRcode(q, mdns.RcodeServerFailure)
		reply.RecursionAvailable = true
	} else {
		reply = r
		reply.Id = q.Id
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := mdns.MinMsgSize
		if o := q.IsEdns0(); o != nil && int(o.UDPSize()) > size {
			size = int(o.UDPSize())
		}
		reply.Truncate(size)
	}
	_ = w.WriteMsg(reply)
}

package usernet

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// pingIdle is how long an echo flow waits for more requests or replies.
const pingIdle = 10 * time.Second

type echoRequest struct {
	mac      net.HardwareAddr
	src, dst netip.Addr
	id, seq  uint16
	payload  []byte
}

type flowKey struct {
	src, dst netip.Addr
	id       uint16
}

// pinger relays guest echo requests through host ICMP sockets: an
// unprivileged ping socket (net.ipv4.ping_group_range), else a raw socket
// (CAP_NET_RAW). Without either, echo requests go unanswered, as with
// slirp4netns.
type pinger struct {
	st *Stack

	mu     sync.Mutex // guards flows and closed
	flows  map[flowKey]*pingFlow
	closed bool
	warned bool
}

type pingFlow struct {
	req  echoRequest
	conn *icmp.PacketConn
	raw  bool
	last time.Time // guarded by pinger.mu
}

func newPinger(st *Stack) *pinger {
	return &pinger{st: st, flows: map[flowKey]*pingFlow{}}
}

func (p *pinger) echo(req echoRequest) {
	key := flowKey{req.src, req.dst, req.id}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	f := p.flows[key]
	if f == nil {
		var err error
		f, err = p.open(req)
		if err != nil {
			if !p.warned {
				p.warned = true
				p.st.log.Warn("cannot relay ping: no ICMP socket (set net.ipv4.ping_group_range)", "err", err)
			}
			p.mu.Unlock()
			return
		}
		p.flows[key] = f
		p.st.wg.Add(1)
		go p.read(key, f)
	}
	f.last = time.Now()
	p.mu.Unlock()

	var typ icmp.Type = ipv4.ICMPTypeEcho
	if req.dst.Is6() {
		typ = ipv6.ICMPTypeEchoRequest
	}
	m := icmp.Message{Type: typ, Body: &icmp.Echo{ID: int(req.id), Seq: int(req.seq), Data: req.payload}}
	b, err := m.Marshal(nil)
	if err != nil {
		return
	}
	var to net.Addr = &net.IPAddr{IP: req.dst.AsSlice()}
	if !f.raw {
		to = &net.UDPAddr{IP: req.dst.AsSlice()}
	}
	_, _ = f.conn.WriteTo(b, to)
}

func (p *pinger) open(req echoRequest) (*pingFlow, error) {
	dgram, raw, laddr := "udp4", "ip4:icmp", "0.0.0.0"
	if req.dst.Is6() {
		dgram, raw, laddr = "udp6", "ip6:ipv6-icmp", "::"
	}
	if ip := p.st.outboundIP(req.dst); ip != nil {
		laddr = ip.String()
	}
	c, err := icmp.ListenPacket(dgram, laddr)
	if err == nil {
		return &pingFlow{req: req, conn: c}, nil
	}
	c, err2 := icmp.ListenPacket(raw, laddr)
	if err2 == nil {
		return &pingFlow{req: req, conn: c, raw: true}, nil
	}
	return nil, errors.Join(err, err2)
}

// read relays the replies of one flow until it has been idle for
// pingIdle.
func (p *pinger) read(key flowKey, f *pingFlow) {
	defer p.st.wg.Done()
	defer f.conn.Close()
	proto := 1
	if key.dst.Is6() {
		proto = 58
	}
	buf := make([]byte, 65536)
	for {
		_ = f.conn.SetReadDeadline(time.Now().Add(pingIdle))
		n, from, err := f.conn.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			p.mu.Lock()
			idle := time.Since(f.last) >= pingIdle
			if p.closed || !(errors.As(err, &ne) && ne.Timeout()) || idle {
				if p.flows[key] == f {
					delete(p.flows, key)
				}
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || (m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply) {
			continue
		}
		if f.raw {
			// A raw socket sees every reply on the host: keep ours.
			if a, ok := from.(*net.IPAddr); !ok || !a.IP.Equal(key.dst.AsSlice()) || echo.ID != int(key.id) {
				continue
			}
		}
		proto, frame := p.st.echoReplyFrame(f.req, uint16(echo.Seq), echo.Data)
		p.st.writeFrame(proto, frame)
	}
}

func (p *pinger) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for k, f := range p.flows {
		f.conn.Close()
		delete(p.flows, k)
	}
}

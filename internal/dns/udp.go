package dns

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// The UDP path is served without a goroutine per query: each socket has a
// reader that answers local names inline and hands forwarded queries to the
// relay, which sends the client's own bytes upstream under a fresh ID and
// sends the upstream's reply bytes back with the client's ID. Nothing is
// unpacked and packed again on the way back. Lost upstream packets are
// retried once, then the next server is tried, then the client gets
// SERVFAIL.

// udpSockets is how many SO_REUSEPORT sockets serve one address.
func udpSockets() int {
	n := runtime.NumCPU()
	if n > 4 {
		n = 4
	}
	if n < 1 {
		n = 1
	}
	return n
}

func listenUDPReuse(addr string) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			if serr == nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// serveUDP reads queries from pc, which listens on local. A query the
// snapshot's reply cache knows is answered from it (or forwarded) without
// being unpacked; others are unpacked, decided and remembered.
func (s *Server) serveUDP(pc *net.UDPConn, local netip.Addr) {
	buf := make([]byte, 65535)
	var key, out []byte
	for {
		n, addr, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n < 12 || buf[2]&0x80 != 0 { // too short, or a response (QR)
			continue
		}
		src := addr.Addr().Unmap()
		snap := s.snap.Load()
		if snap != nil {
			key = cacheKey(key[:0], src, local, buf[:n])
			if reply, ok := snap.replies.get(key); ok {
				if reply == nil {
					raw := append([]byte(nil), buf[:n]...)
					s.relay.forward(pc, addr, src, nil, raw, s.upstreamsFor(snap.ScopeFor(src, local)))
					continue
				}
				out = append(out[:0], reply...)
				out[0], out[1] = buf[0], buf[1]
				_, _ = pc.WriteToUDPAddrPort(out, addr)
				continue
			}
		}
		q := new(mdns.Msg)
		if err := q.Unpack(buf[:n]); err != nil || q.Response {
			continue
		}
		var sc Scope
		if snap != nil {
			sc = snap.ScopeFor(src, local)
		}
		reply := new(mdns.Msg)
		if answer(sc, q, reply, s.cfg.FilterDomain, s.cfg.NoProxy) == forward {
			if snap != nil {
				snap.replies.put(key, nil)
			}
			raw := append([]byte(nil), buf[:n]...)
			s.relay.forward(pc, addr, src, q, raw, s.upstreamsFor(sc))
			continue
		}
		b := packReply(q, reply)
		if b == nil {
			continue
		}
		if snap != nil && sc.Allowed {
			// Refusals are not remembered: strangers must not fill
			// the cache.
			snap.replies.put(key, b)
		}
		_, _ = pc.WriteToUDPAddrPort(b, addr)
	}
}

// packReply truncates reply to what the query's UDP size allows and packs
// it (nil when it cannot be packed).
func packReply(q, reply *mdns.Msg) []byte {
	size := mdns.MinMsgSize
	if o := q.IsEdns0(); o != nil && int(o.UDPSize()) > size {
		size = int(o.UDPSize())
	}
	reply.Truncate(size)
	b, err := reply.Pack()
	if err != nil {
		return nil
	}
	return b
}

func sendUDP(pc *net.UDPConn, to netip.AddrPort, q, reply *mdns.Msg) {
	if b := packReply(q, reply); b != nil {
		_, _ = pc.WriteToUDPAddrPort(b, to)
	}
}

func (s *Server) upstreamsFor(sc Scope) []netip.Addr {
	servers := sc.Upstreams()
	if len(servers) == 0 {
		servers = s.resolv.Servers()
	}
	if len(servers) > MaxUpstreams {
		servers = servers[:MaxUpstreams]
	}
	return servers
}

// relay forwards UDP queries asynchronously.
type relay struct {
	s       *Server
	port    uint16
	attempt time.Duration // wait for one try at one server

	mu   sync.Mutex // guards ups
	ups  map[netip.AddrPort]*relayUpstream
	done chan struct{}
}

type relayUpstream struct {
	r    *relay
	addr netip.AddrPort
	conn *net.UDPConn

	mu      sync.Mutex // guards pending
	pending map[uint16]*relayQuery
}

// relayQuery is one client query on its way through the upstreams.
type relayQuery struct {
	client   *net.UDPConn
	to       netip.AddrPort
	src      netip.Addr
	q        *mdns.Msg
	raw      []byte // the client's query; its ID is rewritten per send
	question []byte // the question section, to match replies
	id       uint16 // the client's ID
	servers  []netip.Addr
	server   int  // index into servers
	retried  bool // this server was asked twice already
	deadline time.Time
}

func newRelay(s *Server, port uint16, budget time.Duration) *relay {
	r := &relay{s: s, port: port, ups: map[netip.AddrPort]*relayUpstream{}, done: make(chan struct{})}
	// Each server gets two tries within its share of the budget.
	r.attempt = budget / (2 * MaxUpstreams)
	if r.attempt < 300*time.Millisecond {
		r.attempt = 300 * time.Millisecond
	}
	go r.janitor()
	return r
}

func (r *relay) close() {
	select {
	case <-r.done:
	default:
		close(r.done)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, u := range r.ups {
		u.conn.Close()
		delete(r.ups, k)
	}
}

func (r *relay) upstream(ap netip.AddrPort) (*relayUpstream, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if u := r.ups[ap]; u != nil {
		return u, nil
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(4 << 20)
	u := &relayUpstream{r: r, addr: ap, conn: c, pending: map[uint16]*relayQuery{}}
	r.ups[ap] = u
	go u.read()
	return u, nil
}

// questionSection returns the bytes of the question section of a packed
// message with one question.
func questionSection(raw []byte) []byte {
	if len(raw) < 12 {
		return nil
	}
	off := 12
	for off < len(raw) {
		l := int(raw[off])
		if l == 0 {
			off++
			break
		}
		if l&0xc0 != 0 {
			return nil // compression in a question: do not match by bytes
		}
		off += 1 + l
	}
	off += 4
	if off > len(raw) {
		return nil
	}
	return raw[12:off]
}

// forward relays the client's query raw; q is its unpacked form, or nil
// when the reply cache decided (then it is unpacked only if needed).
func (r *relay) forward(client *net.UDPConn, to netip.AddrPort, src netip.Addr, q *mdns.Msg, raw []byte, servers []netip.Addr) {
	rq := &relayQuery{client: client, to: to, src: src, q: q, raw: raw, question: questionSection(raw), id: binary.BigEndian.Uint16(raw[0:2]), servers: servers}
	if len(servers) == 0 || !r.s.acquire(src) {
		r.servfail(rq)
		return
	}
	r.send(rq)
}

// query returns the client's query unpacked (with its own ID).
func (rq *relayQuery) query() (*mdns.Msg, error) {
	if rq.q != nil {
		return rq.q, nil
	}
	q := new(mdns.Msg)
	if err := q.Unpack(rq.raw); err != nil {
		return nil, err
	}
	q.Id = rq.id
	rq.q = q
	return q, nil
}

// servfail answers the client with SERVFAIL.
func (r *relay) servfail(rq *relayQuery) {
	q, err := rq.query()
	if err != nil {
		return
	}
	fail := new(mdns.Msg)
	fail.SetRcode(q, mdns.RcodeServerFailure)
	fail.RecursionAvailable = true
	sendUDP(rq.client, rq.to, q, fail)
}

// send asks the current server; on failure to send, it moves on.
func (r *relay) send(rq *relayQuery) {
	for rq.server < len(rq.servers) {
		u, err := r.upstream(netip.AddrPortFrom(rq.servers[rq.server], r.port))
		if err == nil {
			u.mu.Lock()
			var id uint16
			for {
				id = uint16(rand.Uint32())
				if _, used := u.pending[id]; !used {
					break
				}
			}
			rq.deadline = time.Now().Add(r.attempt)
			u.pending[id] = rq
			u.mu.Unlock()
			binary.BigEndian.PutUint16(rq.raw[0:2], id)
			if _, err = u.conn.Write(rq.raw); err == nil {
				return
			}
			u.mu.Lock()
			delete(u.pending, id)
			u.mu.Unlock()
		}
		rq.server++
		rq.retried = false
	}
	r.finish(rq, nil)
}

// finish answers the client: with the upstream's reply bytes, or SERVFAIL.
func (r *relay) finish(rq *relayQuery, reply []byte) {
	defer r.s.release(rq.src)
	if reply != nil {
		binary.BigEndian.PutUint16(reply[0:2], rq.id)
		_, _ = rq.client.WriteToUDPAddrPort(reply, rq.to)
		return
	}
	r.servfail(rq)
}

func (u *relayUpstream) read() {
	buf := make([]byte, 65535)
	for {
		n, err := u.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ECONNREFUSED from an earlier send
		}
		if n < 12 {
			continue
		}
		id := binary.BigEndian.Uint16(buf[0:2])
		u.mu.Lock()
		rq := u.pending[id]
		if rq != nil && rq.question != nil && !bytes.EqualFold(questionSection(buf[:n]), rq.question) {
			rq = nil // a stray reply: keep waiting for the real one
		}
		if rq != nil {
			delete(u.pending, id)
		}
		u.mu.Unlock()
		if rq == nil {
			continue
		}
		flags := binary.BigEndian.Uint16(buf[2:4])
		rcode := int(flags & 0xf)
		switch {
		case flags&(1<<9) != 0: // TC: ask the same server over TCP
			go u.r.overTCP(rq, u.addr)
		case (rcode == mdns.RcodeServerFailure || rcode == mdns.RcodeRefused) && rq.server+1 < len(rq.servers):
			rq.server++
			rq.retried = false
			u.r.send(rq)
		default:
			u.r.finish(rq, buf[:n]) // written before buf is reused
		}
	}
}

func (r *relay) overTCP(rq *relayQuery, ap netip.AddrPort) {
	q, err := rq.query()
	if err != nil {
		r.finish(rq, nil)
		return
	}
	c := &mdns.Client{Net: "tcp", Timeout: 2 * r.attempt}
	resp, _, err := c.Exchange(q, ap.String())
	if err != nil {
		r.finish(rq, nil)
		return
	}
	defer r.s.release(rq.src)
	resp.Id = rq.id
	sendUDP(rq.client, rq.to, q, resp)
}

// janitor retries queries whose upstream did not answer in time.
func (r *relay) janitor() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case now := <-t.C:
			var expired []*relayQuery
			r.mu.Lock()
			ups := make([]*relayUpstream, 0, len(r.ups))
			for _, u := range r.ups {
				ups = append(ups, u)
			}
			r.mu.Unlock()
			for _, u := range ups {
				u.mu.Lock()
				for id, rq := range u.pending {
					if now.After(rq.deadline) {
						delete(u.pending, id)
						expired = append(expired, rq)
					}
				}
				u.mu.Unlock()
			}
			for _, rq := range expired {
				if rq.retried {
					rq.server++
					rq.retried = false
				} else {
					rq.retried = true
				}
				r.send(rq)
			}
		}
	}
}

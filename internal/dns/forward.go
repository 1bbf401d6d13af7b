package dns

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/berthnet/berth/internal/safefile"
)

// MaxUpstreams is how many upstream servers are tried per query.
const MaxUpstreams = 3

// ErrNoUpstream is returned when no upstream server answered.
var ErrNoUpstream = errors.New("no upstream server answered")

// Forwarder sends queries to upstream servers over one long-lived UDP socket
// per server (queries are matched to replies by ID), falling back to TCP
// when a reply is truncated. aardvark-dns 1.4 opens a socket per query.
type Forwarder struct {
	// Timeout is the budget for one query across all servers tried.
	Timeout time.Duration
	// Port is the upstream servers' port (53; tests use others).
	Port uint16

	mu    sync.Mutex // guards ups
	ups   map[netip.AddrPort]*upstream
	close chan struct{}
}

// NewForwarder returns a Forwarder with the given per-query budget.
func NewForwarder(timeout time.Duration) *Forwarder {
	return &Forwarder{Timeout: timeout, Port: 53, ups: map[netip.AddrPort]*upstream{}, close: make(chan struct{})}
}

type upstream struct {
	addr netip.AddrPort
	conn *net.UDPConn

	mu      sync.Mutex // guards pending
	pending map[uint16]chan *mdns.Msg
	dead    bool
}

func (f *Forwarder) get(ap netip.AddrPort) (*upstream, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u := f.ups[ap]; u != nil && !u.isDead() {
		return u, nil
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, fmt.Errorf("dial upstream %s: %w", ap, err)
	}
	u := &upstream{addr: ap, conn: c, pending: map[uint16]chan *mdns.Msg{}}
	f.ups[ap] = u
	go u.read()
	return u, nil
}

func (u *upstream) isDead() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.dead
}

func (u *upstream) read() {
	buf := make([]byte, 65535)
	for {
		n, err := u.conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// ECONNREFUSED and friends are reported per read on a
			// connected UDP socket; keep reading unless it is closed.
			if errors.Is(err, net.ErrClosed) {
				u.mu.Lock()
				u.dead = true
				for id, ch := range u.pending {
					close(ch)
					delete(u.pending, id)
				}
				u.mu.Unlock()
				return
			}
			continue
		}
		m := new(mdns.Msg)
		if err := m.Unpack(buf[:n]); err != nil {
			continue
		}
		u.mu.Lock()
		ch := u.pending[m.Id]
		delete(u.pending, m.Id)
		u.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// exchange sends q over the shared socket and waits for the matching reply.
func (u *upstream) exchange(ctx context.Context, q *mdns.Msg) (*mdns.Msg, error) {
	ch := make(chan *mdns.Msg, 1)
	u.mu.Lock()
	if u.dead {
		u.mu.Unlock()
		return nil, net.ErrClosed
	}
	var id uint16
	for {
		id = uint16(rand.Uint32())
		if _, used := u.pending[id]; !used {
			break
		}
	}
	u.pending[id] = ch
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		delete(u.pending, id)
		u.mu.Unlock()
	}()
	out := q.Copy()
	out.Id = id
	b, err := out.Pack()
	if err != nil {
		return nil, err
	}
	if _, err := u.conn.Write(b); err != nil {
		return nil, err
	}
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				return nil, net.ErrClosed
			}
			if !sameQuestion(q, m) {
				// A stray reply with a reused ID: keep waiting.
				u.mu.Lock()
				u.pending[id] = ch
				u.mu.Unlock()
				continue
			}
			return m, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func sameQuestion(q, r *mdns.Msg) bool {
	if len(q.Question) != len(r.Question) {
		return false
	}
	for i := range q.Question {
		a, b := q.Question[i], r.Question[i]
		if !strings.EqualFold(a.Name, b.Name) || a.Qtype != b.Qtype || a.Qclass != b.Qclass {
			return false
		}
	}
	return true
}

// Exchange forwards q to the servers in order until one answers. A
// truncated UDP reply is retried over TCP with the same server. When none
// answers usefully, the error comes with the last SERVFAIL or REFUSED
// answer received, if any, for front-ends that pass an upstream's verdict
// on as it was (the user-mode networks' forwarders, as a NAT would).
func (f *Forwarder) Exchange(ctx context.Context, q *mdns.Msg, servers []netip.Addr) (*mdns.Msg, error) {
	if len(servers) > MaxUpstreams {
		servers = servers[:MaxUpstreams]
	}
	if len(servers) == 0 {
		return nil, ErrNoUpstream
	}
	per := f.Timeout / time.Duration(len(servers))
	if per < 500*time.Millisecond {
		per = 500 * time.Millisecond
	}
	var (
		errs []error
		last *mdns.Msg
	)
	for _, s := range servers {
		ap := netip.AddrPortFrom(s, f.Port)
		u, err := f.get(ap)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, per)
		r, err := u.exchange(cctx, q)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ap, err))
			continue
		}
		if r.Truncated {
			c := &mdns.Client{Net: "tcp", Timeout: per}
			if tr, _, err := c.ExchangeContext(ctx, q, ap.String()); err == nil {
				r = tr
			}
		}
		if r.Rcode == mdns.RcodeServerFailure || r.Rcode == mdns.RcodeRefused {
			errs = append(errs, fmt.Errorf("%s: %s", ap, mdns.RcodeToString[r.Rcode]))
			last = r
			continue
		}
		return r, nil
	}
	return last, errors.Join(append([]error{ErrNoUpstream}, errs...)...)
}

// Close releases the upstream sockets.
func (f *Forwarder) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, u := range f.ups {
		u.conn.Close()
		delete(f.ups, k)
	}
}

// ResolvConf reads the host's nameservers from a resolv.conf file and
// re-reads it when the file changes (checked at most once a second). A
// file that is not a regular file, or is too large, gives no servers and
// is reported to Log once per change.
type ResolvConf struct {
	Path string
	// Log receives a file that cannot be read; nil discards.
	Log *slog.Logger

	mu      sync.Mutex // guards the fields below
	checked time.Time
	mtime   time.Time
	size    int64
	servers []netip.Addr
}

// Servers returns the current nameservers (at most MaxUpstreams).
func (r *ResolvConf) Servers() []netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.checked) < time.Second && r.servers != nil {
		return r.servers
	}
	r.checked = now
	st, err := os.Stat(r.Path)
	if err != nil {
		r.servers = []netip.Addr{}
		return r.servers
	}
	if st.ModTime().Equal(r.mtime) && st.Size() == r.size && r.servers != nil {
		return r.servers
	}
	r.mtime, r.size = st.ModTime(), st.Size()
	b, err := safefile.Read(r.Path, safefile.DefaultLimit)
	if err != nil && r.Log != nil {
		r.Log.Error("skipping resolv.conf", "error", err)
	}
	r.servers = parseResolvConf(b)
	return r.servers
}

func parseResolvConf(b []byte) []netip.Addr {
	out := []netip.Addr{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(fields[1])
		if err != nil {
			continue
		}
		// 127.0.0.53 and friends live in the host's namespace, which the
		// containers cannot reach, but the server runs there, so keep them.
		out = append(out, a)
		if len(out) == MaxUpstreams {
			break
		}
	}
	return out
}

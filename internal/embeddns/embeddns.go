// Package embeddns is the resolver Docker's clients expect at 127.0.0.11
// inside every container on a user-defined network. It listens inside
// the container's namespace (its sockets are made there by the caller)
// and forwards each query to the DNS servers of the container's
// networks, berth's aardvark-compatible server on each network's
// gateway, from the container's own addresses, so that server answers
// with the container's view: names and aliases of the networks it is on,
// everything else forwarded to the host's resolvers.
//
// A name that the first network does not know (NXDOMAIN) and that can be
// a container name (one label, or inside a search domain) is asked of
// the next network; other names go to the first network only, so an
// unknown public name is not resolved upstream once per network.
package embeddns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// Address is where Docker puts the embedded resolver.
var Address = netip.MustParseAddr("127.0.0.11")

// Config configures a Server.
type Config struct {
	// Upstreams are the DNS servers of the container's networks, in the
	// order of the networks.
	Upstreams []netip.AddrPort
	// LocalDomains are the domains whose names may be on any network
	// (default "dns.podman").
	LocalDomains []string
	// Dial opens a connection to an upstream from the container's
	// namespace (default: net.Dialer in the calling namespace).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout is the budget per upstream exchange (default 4 s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Server answers on a UDP socket and a TCP listener.
type Server struct {
	cfg  Config
	udp  *mdns.Server
	tcp  *mdns.Server
	wg   sync.WaitGroup
	once sync.Once
}

// New returns a server forwarding as cfg says; Serve starts it.
func New(cfg Config) (*Server, error) {
	if len(cfg.Upstreams) == 0 {
		return nil, errors.New("embedded DNS: no upstream servers")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 4 * time.Second
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = d.DialContext
	}
	if len(cfg.LocalDomains) == 0 {
		cfg.LocalDomains = []string{"dns.podman"}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg}, nil
}

// Serve answers queries on pc (UDP) and ln (TCP) until Close.
func (s *Server) Serve(pc net.PacketConn, ln net.Listener) {
	s.udp = &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(s.handle("udp"))}
	s.tcp = &mdns.Server{Listener: ln, Handler: mdns.HandlerFunc(s.handle("tcp"))}
	for _, srv := range []*mdns.Server{s.udp, s.tcp} {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = srv.ActivateAndServe()
		}()
	}
}

// Close stops both listeners and waits for them.
func (s *Server) Close() {
	s.once.Do(func() {
		for _, srv := range []*mdns.Server{s.udp, s.tcp} {
			if srv != nil {
				_ = srv.Shutdown()
			}
		}
	})
	s.wg.Wait()
}

func (s *Server) handle(proto string) func(mdns.ResponseWriter, *mdns.Msg) {
	return func(w mdns.ResponseWriter, q *mdns.Msg) {
		resp, err := s.Resolve(context.Background(), proto, q)
		if err != nil {
			s.cfg.Logger.Debug("embedded DNS: forward failed", "err", err)
			resp = new(mdns.Msg)
			resp.SetRcode(q, mdns.RcodeServerFailure)
		}
		_ = w.WriteMsg(resp)
	}
}

// Resolve forwards q over proto ("udp" or "tcp") as described in the
// package comment.
func (s *Server) Resolve(ctx context.Context, proto string, q *mdns.Msg) (*mdns.Msg, error) {
	var last *mdns.Msg
	var lastErr error
	for i, up := range s.cfg.Upstreams {
		if i > 0 && !s.mayBeLocal(q) {
			break
		}
		r, err := s.exchange(ctx, proto, up, q)
		if err != nil {
			lastErr = err
			continue
		}
		last = r
		if r.Rcode != mdns.RcodeNameError {
			return r, nil
		}
	}
	if last != nil {
		return last, nil
	}
	return nil, lastErr
}

// mayBeLocal reports whether the question can be a container's name:
// one label, or inside a local domain.
func (s *Server) mayBeLocal(q *mdns.Msg) bool {
	if len(q.Question) != 1 {
		return false
	}
	name := strings.ToLower(strings.TrimSuffix(q.Question[0].Name, "."))
	if !strings.Contains(name, ".") {
		return true
	}
	for _, d := range s.cfg.LocalDomains {
		if strings.HasSuffix(name, "."+strings.ToLower(d)) {
			return true
		}
	}
	return false
}

func (s *Server) exchange(ctx context.Context, proto string, up netip.AddrPort, q *mdns.Msg) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	c, err := s.cfg.Dial(ctx, proto, up.String())
	if err != nil {
		return nil, fmt.Errorf("dial %s %s: %w", proto, up, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	dc := &mdns.Conn{Conn: c, UDPSize: 4096}
	if err := dc.WriteMsg(q); err != nil {
		return nil, fmt.Errorf("send to %s: %w", up, err)
	}
	for {
		r, err := dc.ReadMsg()
		if err != nil {
			return nil, fmt.Errorf("answer from %s: %w", up, err)
		}
		if r.Id == q.Id {
			return r, nil
		}
	}
}

package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

// ResolvConfEnv names, in the DNS server's environment, the resolver file
// it forwards to instead of /etc/resolv.conf: a rootless network
// namespace on pasta forwards to pasta's DNS address, as Podman 5 points
// its rootless netns's resolv.conf there (the host's own resolvers may be
// on a loopback the namespace cannot reach).
const ResolvConfEnv = "BERTH_DNS_RESOLV_CONF"

// Config configures a Server.
type Config struct {
	// Dir is the aardvark-dns configuration directory.
	Dir string
	// Port is the port to listen on at every bind address.
	Port uint16
	// FilterDomain is the search domain stripped from queries
	// (".dns.podman"); names inside it are never forwarded.
	FilterDomain string
	// ResolvConf is the host's resolver file (default /etc/resolv.conf;
	// the aardvark-dns front-end takes it from ResolvConfEnv).
	ResolvConf string
	// NoProxy disables forwarding (AARDVARK_NO_PROXY).
	NoProxy bool
	// Timeout is the forwarding budget per query (default 5 s).
	Timeout time.Duration
	// MaxInflightPerSource caps concurrent forwarded queries per client
	// address, so one flooding container cannot starve the others.
	MaxInflightPerSource int
	// Logger receives errors and reloads; nil discards.
	Logger *slog.Logger
	// UpstreamPort is the port of upstream servers (default 53).
	UpstreamPort uint16
	// ServeHost answers queries from the host itself: a loopback source
	// address or one of the listening addresses. Other sources that are
	// not containers on the network listening there are always refused.
	ServeHost bool
}

// Server is a running DNS server.
type Server struct {
	cfg    Config
	log    *slog.Logger
	snap   atomic.Pointer[Snapshot]
	fwd    *Forwarder // TCP clients
	relay  *relay     // UDP clients
	resolv *ResolvConf

	mu        sync.Mutex // guards listeners
	listeners map[netip.Addr]*listener

	inflightMu sync.Mutex // guards inflight
	inflight   map[netip.Addr]int
}

type listener struct {
	udp []*net.UDPConn
	tcp *mdns.Server
}

// New loads the configuration but does not listen yet.
func New(cfg Config) (*Server, error) {
	if cfg.Port == 0 {
		cfg.Port = 53
	}
	if cfg.FilterDomain == "" {
		cfg.FilterDomain = DefaultFilterDomain
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxInflightPerSource == 0 {
		cfg.MaxInflightPerSource = 256
	}
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	fwd := NewForwarder(cfg.Timeout)
	if cfg.UpstreamPort != 0 {
		fwd.Port = cfg.UpstreamPort
	}
	s := &Server{
		cfg: cfg, log: l,
		fwd:       fwd,
		resolv:    &ResolvConf{Path: cfg.ResolvConf, Log: l},
		listeners: map[netip.Addr]*listener{},
		inflight:  map[netip.Addr]int{},
	}
	up := cfg.UpstreamPort
	if up == 0 {
		up = 53
	}
	s.relay = newRelay(s, up, cfg.Timeout)
	return s, nil
}

// Reload re-reads the configuration directory, starts listeners for new
// bind addresses and stops those for addresses that are gone. Listeners
// for addresses that stay keep their sockets, so no query is dropped.
// It returns the number of bind addresses now served; errors binding new
// addresses are returned (the others still serve).
func (s *Server) Reload() (int, error) {
	snap, err := Load(s.cfg.Dir)
	if err != nil {
		return 0, fmt.Errorf("load %s: %w", s.cfg.Dir, err)
	}
	for _, e := range snap.Errors {
		s.log.Error("skipping network file", "error", e)
	}
	snap.ServeHost(s.cfg.ServeHost)
	s.snap.Store(snap)
	want := map[netip.Addr]bool{}
	for _, ip := range snap.BindIPs() {
		want[ip] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for ip := range want {
		if s.listeners[ip] != nil {
			continue
		}
		l, err := s.listen(ip)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.listeners[ip] = l
	}
	for ip, l := range s.listeners {
		if !want[ip] {
			l.shutdown()
			delete(s.listeners, ip)
		}
	}
	return len(s.listeners), errors.Join(errs...)
}

func (s *Server) listen(ip netip.Addr) (*listener, error) {
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(int(s.cfg.Port)))
	l := &listener{}
	for i := 0; i < udpSockets(); i++ {
		pc, err := listenUDPReuse(addr)
		if err != nil {
			l.shutdown()
			return nil, err // "listen udp ADDR: bind: ..." names it
		}
		l.udp = append(l.udp, pc)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		l.shutdown()
		return nil, err
	}
	l.tcp = &mdns.Server{Listener: ln, Handler: mdns.HandlerFunc(s.ServeDNS), ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: func() time.Duration { return 10 * time.Second }, MaxTCPQueries: 128}
	for _, pc := range l.udp {
		go s.serveUDP(pc, ip)
	}
	go func() {
		if err := l.tcp.ActivateAndServe(); err != nil {
			s.log.Debug("listener stopped", "addr", addr, "error", err)
		}
	}()
	return l, nil
}

func (l *listener) shutdown() {
	for _, pc := range l.udp {
		pc.Close()
	}
	if l.tcp != nil {
		_ = l.tcp.Shutdown()
		_ = l.tcp.Listener.Close()
	}
}

// Close stops every listener and releases upstream sockets.
func (s *Server) Close() {
	s.mu.Lock()
	for ip, l := range s.listeners {
		l.shutdown()
		delete(s.listeners, ip)
	}
	s.mu.Unlock()
	s.fwd.Close()
	s.relay.close()
}

func addrOf(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w mdns.ResponseWriter, q *mdns.Msg) {
	snap := s.snap.Load()
	src, local := addrOf(w.RemoteAddr()), addrOf(w.LocalAddr())
	reply := new(mdns.Msg)
	var sc Scope
	if snap != nil {
		sc = snap.ScopeFor(src, local)
	}
	if answer(sc, q, reply, s.cfg.FilterDomain, s.cfg.NoProxy) == forward {
		reply = s.forward(src, sc, q)
	}
	s.write(w, q, reply)
}

func (s *Server) forward(src netip.Addr, sc Scope, q *mdns.Msg) *mdns.Msg {
	fail := new(mdns.Msg)
	fail.SetRcode(q, mdns.RcodeServerFailure)
	fail.RecursionAvailable = true
	if !s.acquire(src) {
		return fail
	}
	defer s.release(src)
	servers := sc.Upstreams()
	if len(servers) == 0 {
		servers = s.resolv.Servers()
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	r, err := s.fwd.Exchange(ctx, q, servers)
	if err != nil {
		s.log.Debug("forward failed", "name", q.Question[0].Name, "error", err)
		return fail
	}
	r.Id = q.Id
	return r
}

func (s *Server) acquire(src netip.Addr) bool {
	s.inflightMu.Lock()
	defer s.inflightMu.Unlock()
	if s.inflight[src] >= s.cfg.MaxInflightPerSource {
		return false
	}
	s.inflight[src]++
	return true
}

func (s *Server) release(src netip.Addr) {
	s.inflightMu.Lock()
	defer s.inflightMu.Unlock()
	if s.inflight[src]--; s.inflight[src] <= 0 {
		delete(s.inflight, src)
	}
}

// write sends the reply, truncating it to what a UDP client accepts.
func (s *Server) write(w mdns.ResponseWriter, q, reply *mdns.Msg) {
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := mdns.MinMsgSize
		if o := q.IsEdns0(); o != nil {
			if o.UDPSize() > uint16(size) {
				size = int(o.UDPSize())
			}
		}
		reply.Truncate(size)
	}
	if err := w.WriteMsg(reply); err != nil {
		s.log.Debug("write reply", "error", err)
	}
}

// Snapshot returns the configuration currently served.
func (s *Server) Snapshot() *Snapshot { return s.snap.Load() }

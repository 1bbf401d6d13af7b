// Package dhcpproxy is berth's DHCP proxy: the long-running server behind
// `netavark dhcp-proxy` that leases addresses for containers on macvlan
// (and unmanaged bridge) networks whose IPAM driver is "dhcp".
//
// It speaks netavark's gRPC API (service netavark_proxy.NetavarkProxy on a
// unix socket, by default /run/podman/nv-proxy.sock), so netavark-protocol
// callers work unchanged. For each container interface it runs a DHCPv4
// client inside the container's network namespace, configures the leased
// address and routes there, and keeps the lease (internal/dhcp's Keeper:
// renew at T1, rebind at T2, give the address up when the lease is lost).
// Leases are cached in <dir>/nv-proxy.lease, so a restarted proxy resumes
// the renewals. Client is the caller's side of the socket.
package dhcpproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/berthnet/berth/internal/dhcp"
	proxypb "github.com/berthnet/berth/internal/dhcpproxy/proto"
	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
)

// Defaults of netavark's dhcp-proxy.
const (
	DefaultDir             = "/run/podman"
	SocketName             = "nv-proxy.sock"
	DefaultSocket          = DefaultDir + "/" + SocketName
	DefaultTimeout         = 8 * time.Second
	DefaultActivityTimeout = 300 * time.Second
)

// Config configures a Server.
type Config struct {
	// Dir holds the lease cache (default /run/podman).
	Dir string
	// Timeout bounds the first lease of an interface (DISCOVER to ACK;
	// default 8 s).
	Timeout time.Duration
	// ActivityTimeout ends Serve once no lease is held and no call has
	// come for this long; 0 means never.
	ActivityTimeout time.Duration
	// Logger receives progress; nil discards.
	Logger *slog.Logger
	// TimeScale multiplies the lease times the keepers act on (test hook:
	// 0.1 renews a 2-minute lease after 6 s); 0 means 1.
	TimeScale float64
	// MinRetry is the shortest wait between unanswered renewals (default
	// 60 s, RFC 2131's suggestion).
	MinRetry time.Duration
	// Wording returns the message a failed call reports to the caller
	// (the front-end's words for the typed errors); nil keeps
	// err.Error().
	Wording func(error) string
}

// InterfaceError: the container interface a Setup names cannot be used.
// Err wraps link.ErrNotFound when there is no such interface (an empty
// name included).
type InterfaceError struct {
	Name string
	Err  error
}

// Error names the interface and the failure.
func (e *InterfaceError) Error() string {
	return fmt.Sprintf("container interface %q: %v", e.Name, e.Err)
}

// Unwrap returns the failure.
func (e *InterfaceError) Unwrap() error { return e.Err }

// Missing reports whether the interface does not exist (or has no name).
func (e *InterfaceError) Missing() bool { return errors.Is(e.Err, link.ErrNotFound) }

// MACMismatchError: the container interface has another MAC than the
// Setup names.
type MACMismatchError struct {
	Iface      string
	Have, Want net.HardwareAddr
}

// Error names both addresses.
func (e *MACMismatchError) Error() string {
	return fmt.Sprintf("interface %s has MAC %s, not %s", e.Iface, e.Have, e.Want)
}

// Server is the DHCP proxy.
type Server struct {
	proxypb.UnimplementedNetavarkProxyServer

	cfg   Config
	log   *slog.Logger
	store store

	// keepCtx lives as long as Serve; keepers run under it.
	keepCtx context.Context
	stopAll context.CancelFunc

	// mu guards leases, inflight and lastActive.
	mu         sync.Mutex
	leases     map[string]*entry // by MAC
	inflight   int
	lastActive time.Time
}

// entry is a lease being kept.
type entry struct {
	rec    *record
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		cfg.Dir = DefaultDir
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ActivityTimeout < 0 {
		return nil, errors.New("dhcpproxy: negative activity timeout")
	}
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Server{
		cfg:    cfg,
		log:    l.With("component", "dhcp-proxy"),
		store:  store{path: filepath.Join(cfg.Dir, LeaseFile)},
		leases: map[string]*entry{},
	}, nil
}

// Listen opens the proxy's socket, <dir>/nv-proxy.sock (mode 0660),
// replacing a stale socket file; it fails when a proxy already answers
// there.
func Listen(dir string) (net.Listener, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	p := filepath.Join(dir, SocketName)
	if _, err := os.Lstat(p); err == nil {
		if c, err := net.DialTimeout("unix", p, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen on %s: a dhcp proxy is already running there", p)
		}
		if err := os.Remove(p); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", p)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", p, err)
	}
	if err := os.Chmod(p, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("set mode of %s: %w", p, err)
	}
	return ln, nil
}

// Serve answers calls on ln until ctx ends or, with an activity timeout,
// the proxy has been idle that long without leases. Leases cached by an
// earlier run are resumed first. On return the keepers have stopped; the
// leases are not released (a restarted proxy resumes them) and the cache
// is up to date.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := os.MkdirAll(s.cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("create lease directory: %w", err)
	}
	s.keepCtx, s.stopAll = context.WithCancel(context.Background())
	defer s.stopAll()
	s.lastActive = time.Now()
	if err := s.resume(); err != nil {
		return err
	}

	gs := grpc.NewServer(grpc.UnaryInterceptor(s.track), grpc.ConnectionTimeout(5*time.Second))
	proxypb.RegisterNetavarkProxyServer(gs, s)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(ln) }()

	var idle <-chan time.Time
	if s.cfg.ActivityTimeout > 0 {
		t := time.NewTicker(min(s.cfg.ActivityTimeout/4+time.Millisecond, time.Second))
		defer t.Stop()
		idle = t.C
	}
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-served:
			err = fmt.Errorf("serve: %w", err)
			break loop
		case <-idle:
			if s.idleFor() >= s.cfg.ActivityTimeout {
				s.log.Info("no leases and no calls; exiting", "activity_timeout", s.cfg.ActivityTimeout)
				break loop
			}
		}
	}
	// Calls in flight may finish (a lease request takes up to Timeout);
	// idle client connections do not hold the proxy up, as they would
	// with GracefulStop.
	deadline := time.Now().Add(s.cfg.Timeout + 2*time.Second)
	for s.busy() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	gs.Stop()
	s.shutdown()
	return err
}

// idleFor returns how long the proxy has had no lease and no call.
func (s *Server) idleFor() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.leases) > 0 || s.inflight > 0 {
		return 0
	}
	return time.Since(s.lastActive)
}

// busy reports whether calls are in flight.
func (s *Server) busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight > 0
}

// track counts calls in flight for the activity timeout.
func (s *Server) track(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	s.mu.Lock()
	s.inflight++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.lastActive = time.Now()
		s.mu.Unlock()
	}()
	return h(ctx, req)
}

// shutdown stops every keeper without releasing and saves the cache.
func (s *Server) shutdown() {
	s.stopAll()
	s.mu.Lock()
	es := make([]*entry, 0, len(s.leases))
	for _, e := range s.leases {
		es = append(es, e)
	}
	s.mu.Unlock()
	for _, e := range es {
		<-e.done
	}
	s.mu.Lock()
	s.saveLocked()
	s.mu.Unlock()
}

// resume restarts the keepers of cached leases whose interface still exists.
func (s *Server) resume() error {
	recs, err := s.store.load()
	if err != nil {
		// A damaged cache must not keep the proxy down: start empty.
		s.log.Warn("ignoring the lease cache", "error", err)
		recs = map[string]*record{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, rec := range recs {
		mac, _ := net.ParseMAC(rec.MAC)
		if _, err := s.interfaceMAC(rec.NSPath, rec.ContainerIface, mac); err != nil {
			s.log.Info("dropping cached lease: interface is gone", "mac", key, "error", err)
			continue
		}
		s.startLocked(key, rec, true)
		s.log.Info("resumed lease", "mac", key, "lease", leaseAddr(rec.Lease))
	}
	s.saveLocked()
	return nil
}

func leaseAddr(l *dhcp.Lease) string {
	if l == nil {
		return "none"
	}
	return l.Addr.String()
}

func (s *Server) saveLocked() {
	recs := make(map[string]*record, len(s.leases))
	for k, e := range s.leases {
		recs[k] = e.rec
	}
	if err := s.store.save(recs); err != nil {
		s.log.Error("save leases", "error", err)
	}
}

func (s *Server) parts(rec *record) (dhcp.Identity, *nsExchanger, *nsBinder) {
	mac, _ := net.ParseMAC(rec.MAC)
	id := dhcp.Identity{MAC: mac, ClientID: rec.ContainerID, Hostname: rec.Hostname}
	ex := &nsExchanger{nsPath: rec.NSPath, ifname: rec.ContainerIface, mac: mac}
	metric := rec.Metric
	if metric == 0 {
		metric = DefaultMetric
	}
	b := &nsBinder{nsPath: rec.NSPath, ifname: rec.ContainerIface, metric: metric, noDefaultRoute: rec.NoDefaultRoute}
	return id, ex, b
}

// startLocked adds rec and starts its keeper. resumed: the lease comes
// from the cache and is configured again first.
func (s *Server) startLocked(key string, rec *record, resumed bool) {
	ctx, cancel := context.WithCancel(s.keepCtx)
	e := &entry{rec: rec, cancel: cancel, done: make(chan struct{})}
	s.leases[key] = e
	id, ex, b := s.parts(rec)
	tm := dhcp.Timing{Scale: s.cfg.TimeScale}
	last := rec.Lease // the last lease held, kept while a lost one is sought again
	k := &dhcp.Keeper{
		ID: id, Ex: ex, Binder: b, Timing: tm, MinRetry: s.cfg.MinRetry,
		Logger: s.log.With("mac", key, "ns", rec.NSPath, "iface", rec.ContainerIface),
		Changed: func(l *dhcp.Lease) {
			if l != nil && last != nil && moved(last, l) {
				// netavark's words: scripts and its tests look for them.
				s.log.Info("ip or gateway for mac "+key+" changed, update address",
					"old", last.Addr, "new", l.Addr, "gateway", l.Gateway())
			}
			if l != nil {
				last = l
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.leases[key] != e {
				return
			}
			e.rec.Lease = l
			s.saveLocked()
		},
	}
	first := rec.Lease
	go func() {
		defer close(e.done)
		if resumed && first != nil && tm.Phase(first, time.Now()) != dhcp.Expired {
			if err := b.Bind(nil, first); err != nil {
				k.Logger.Warn("configure resumed lease", "error", err)
			}
		}
		if err := k.Run(ctx, first); errors.Is(err, dhcp.ErrGone) {
			// The container went without a teardown: forget the lease.
			s.mu.Lock()
			if s.leases[key] == e {
				delete(s.leases, key)
				s.saveLocked()
			}
			s.mu.Unlock()
			k.Logger.Info("interface is gone; lease forgotten", "error", err)
		}
	}()
}

// moved reports whether next has another address, prefix or gateways
// than prev.
func moved(prev, next *dhcp.Lease) bool {
	return prev.Addr != next.Addr || !slices.Equal(prev.Gateways, next.Gateways) || prev.Gateway() != next.Gateway()
}

// take removes the lease kept for key and stops its keeper.
func (s *Server) take(key string) *entry {
	s.mu.Lock()
	e := s.leases[key]
	if e != nil {
		delete(s.leases, key)
		s.saveLocked()
	}
	s.mu.Unlock()
	if e != nil {
		e.cancel()
		<-e.done
	}
	return e
}

// interfaceMAC returns the MAC of the interface ifname in the namespace at
// nsPath, checked against want when given. A missing interface (or an
// empty name) is an *InterfaceError wrapping link.ErrNotFound, another
// MAC a *MACMismatchError.
func (s *Server) interfaceMAC(nsPath, ifname string, want net.HardwareAddr) (net.HardwareAddr, error) {
	ns, err := netns.Open(nsPath)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	if ifname == "" {
		return nil, &InterfaceError{Name: ifname, Err: link.ErrNotFound}
	}
	h, err := link.NewHandle(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	l, err := h.Link(ifname)
	if err != nil {
		return nil, &InterfaceError{Name: ifname, Err: err}
	}
	if want != nil && !bytes.Equal(want, l.MAC) {
		return nil, &MACMismatchError{Iface: ifname, Have: l.MAC, Want: want}
	}
	return l.MAC, nil
}

// statusErr is err as a gRPC status with the code and the configured
// wording.
func (s *Server) statusErr(code codes.Code, err error) error {
	msg := err.Error()
	if s.cfg.Wording != nil {
		msg = s.cfg.Wording(err)
	}
	return status.Error(code, msg)
}

// Setup implements NetavarkProxy.Setup: lease an address for the container
// interface, configure it, and keep it.
func (s *Server) Setup(ctx context.Context, cfg *proxypb.NetworkConfig) (*proxypb.Lease, error) {
	if cfg.GetVersion() == proxypb.Version_V6 {
		return nil, status.Error(codes.Unimplemented, "ipv6 not yet supported")
	}
	want, err := ParseMAC(cfg.GetContainerMacAddr())
	if err != nil {
		return nil, s.statusErr(codes.InvalidArgument, err)
	}
	if cfg.GetNsPath() == "" {
		return nil, status.Error(codes.InvalidArgument, "ns_path is required")
	}
	mac, err := s.interfaceMAC(cfg.GetNsPath(), cfg.GetContainerIface(), want)
	if err != nil {
		return nil, s.statusErr(codes.InvalidArgument, err)
	}
	key := mac.String()
	rec := &record{
		HostIface: cfg.GetHostIface(), ContainerIface: cfg.GetContainerIface(), MAC: key,
		ContainerID: cfg.GetContainerId(), Hostname: cfg.GetHostName(), Domain: cfg.GetDomainName(),
		NSPath: cfg.GetNsPath(), Metric: cfg.GetMetric(), NoDefaultRoute: cfg.GetNoDefaultRoute(),
	}
	if old := s.take(key); old != nil {
		s.log.Info("replacing the lease kept for the same MAC", "mac", key, "ns", old.rec.NSPath)
	}
	id, ex, b := s.parts(rec)
	actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	l, err := ex.Acquire(actx, id)
	switch {
	case errors.Is(err, dhcp.ErrNoAnswer):
		return nil, status.Errorf(codes.DeadlineExceeded, "no DHCP answer on %s within %s", rec.ContainerIface, s.cfg.Timeout)
	case errors.Is(err, dhcp.ErrNAK):
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	case err != nil:
		return nil, status.Errorf(codes.Internal, "acquire lease for %s: %v", rec.ContainerIface, err)
	}
	if err := b.Bind(nil, l); err != nil {
		_ = b.Unbind(l)
		_ = ex.Release(id, l)
		return nil, status.Errorf(codes.Internal, "configure lease %s on %s: %v", l.Addr, rec.ContainerIface, err)
	}
	rec.Lease = l
	s.mu.Lock()
	s.startLocked(key, rec, false)
	s.saveLocked()
	s.mu.Unlock()
	s.log.Info("lease acquired", "mac", key, "addr", l.Addr, "gateway", l.Gateway(), "ns", rec.NSPath)
	return toProto(l, key, rec.Hostname), nil
}

// find returns the key of the lease a Teardown names: by MAC, else by
// container ID and interface, else by namespace path and interface.
func (s *Server) find(cfg *proxypb.NetworkConfig) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, err := net.ParseMAC(cfg.GetContainerMacAddr()); err == nil {
		if _, ok := s.leases[m.String()]; ok {
			return m.String()
		}
	}
	for k, e := range s.leases {
		if e.rec.ContainerIface != cfg.GetContainerIface() {
			continue
		}
		if (cfg.GetContainerId() != "" && e.rec.ContainerID == cfg.GetContainerId()) || (cfg.GetNsPath() != "" && e.rec.NSPath == cfg.GetNsPath()) {
			return k
		}
	}
	return ""
}

// Teardown implements NetavarkProxy.Teardown: stop renewing, send
// DHCPRELEASE, remove the address, forget the lease. An unknown interface
// is not an error (the lease is already gone).
func (s *Server) Teardown(ctx context.Context, cfg *proxypb.NetworkConfig) (*proxypb.Lease, error) {
	key := s.find(cfg)
	if key == "" {
		return &proxypb.Lease{}, nil
	}
	e := s.take(key)
	if e == nil {
		return &proxypb.Lease{}, nil
	}
	s.release(key, e.rec)
	if e.rec.Lease == nil {
		return &proxypb.Lease{MacAddress: key}, nil
	}
	return toProto(e.rec.Lease, key, e.rec.Hostname), nil
}

// release sends DHCPRELEASE and removes the address; failures (the
// interface is already gone) are logged, not returned.
func (s *Server) release(key string, rec *record) {
	if rec.Lease == nil {
		return
	}
	id, ex, b := s.parts(rec)
	if err := ex.Release(id, rec.Lease); err != nil {
		s.log.Info("lease not released", "mac", key, "error", err)
	} else {
		s.log.Info("lease released", "mac", key, "addr", rec.Lease.Addr)
	}
	if err := b.Unbind(rec.Lease); err != nil {
		s.log.Info("address not removed", "mac", key, "error", err)
	}
}

// Clean implements NetavarkProxy.Clean: release and forget every lease.
func (s *Server) Clean(ctx context.Context, _ *proxypb.Empty) (*proxypb.OperationResponse, error) {
	s.mu.Lock()
	keys := make([]string, 0, len(s.leases))
	for k := range s.leases {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	for _, k := range keys {
		if e := s.take(k); e != nil {
			s.release(k, e.rec)
		}
	}
	return &proxypb.OperationResponse{Success: true}, nil
}

// toProto converts a lease to the API's form.
func toProto(l *dhcp.Lease, mac, hostname string) *proxypb.Lease {
	strs := func(as []netip.Addr) []string {
		out := make([]string, 0, len(as))
		for _, a := range as {
			out = append(out, a.String())
		}
		return out
	}
	gws := l.Gateways
	if gw := l.Gateway(); gw.IsValid() && (len(gws) == 0 || gws[0] != gw) {
		gws = append([]netip.Addr{gw}, gws...)
	}
	secs := func(d time.Duration) uint32 { return uint32(d / time.Second) }
	p := &proxypb.Lease{
		T1: secs(l.T1), T2: secs(l.T2), LeaseTime: secs(l.Duration), Mtu: uint32(l.MTU),
		DomainName: l.Domain, MacAddress: mac, Yiaddr: l.Addr.Addr().String(),
		SubnetMask: net.IP(net.CIDRMask(l.Addr.Bits(), 32)).String(),
		DnsServers: strs(l.DNS), Gateways: strs(gws), NtpServers: strs(l.NTP), HostName: l.Hostname,
	}
	if p.HostName == "" {
		p.HostName = hostname
	}
	if l.Server.IsValid() {
		p.SrvId = l.Server.String()
	}
	if l.NextServer.IsValid() {
		p.Siaddr = l.NextServer.String()
	}
	if l.Broadcast.IsValid() {
		p.BroadcastAddr = l.Broadcast.String()
	}
	return p
}

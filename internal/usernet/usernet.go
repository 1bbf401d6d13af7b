// Package usernet is berth's user-mode network stack, the role slirp4netns
// and pasta play for rootless containers: a gVisor netstack in the
// unprivileged host-side process, attached to a TAP device inside the
// container's network namespace.
//
// Everything the guest sends is terminated by the stack and relayed through
// ordinary host sockets: TCP and UDP to any address (the gateway address
// stands for the host's loopback unless DisableHostLoopback), ICMP echo
// through unprivileged ping sockets (raw sockets when allowed), DNS at the
// DNS address answered from the host's resolv.conf servers. Port forwards
// (host listener → guest address and port) are added and removed while the
// stack runs; forwarded connections keep the client's source address when
// the guest can route back to it, else they come from the gateway.
//
// The slirp4netns-compatible command line and API socket live in
// internal/compat/slirp4netns; this package knows nothing of them.
package usernet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	mdns "github.com/miekg/dns"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/berthnet/berth/internal/dns"
)

const nicID tcpip.NICID = 1

// Stack is a running user-mode network.
type Stack struct {
	cfg Config
	log *slog.Logger
	s   *stack.Stack
	lnk *linkTap

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	fwd     *dns.Forwarder
	resolv  *dns.ResolvConf
	dnsSrvs []*mdns.Server

	ping *pinger

	mu       sync.Mutex // guards forwards, nextID, workers, kconns and streams
	forwards map[int]*hostForward
	nextID   int
	workers  map[string]*nsWorker      // kernel forwarding, by namespace path
	kconns   map[*net.TCPConn]struct{} // kernel-path connections, closed with the stack
	streams  map[*net.TCPConn]func()   // relayed guest connections' teardowns, run before the stack closes
	// nsForwards counts the namespace-to-host forwards by what they do.
	nsForwards map[NSForward]int

	closeOnce sync.Once
}

// New starts a stack on the link endpoint ep (an Ethernet endpoint, e.g.
// fdbased over a TAP file descriptor; the stack owns it from now on).
func New(cfg Config, ep stack.LinkEndpoint) (*Stack, error) {
	if ep == nil {
		return nil, errors.New("usernet: nil link endpoint")
	}
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	netProtos := []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol}
	transProtos := []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4}
	if cfg.IPv6 {
		netProtos = append(netProtos, ipv6.NewProtocolWithOptions(ipv6.Options{
			// The stack is the router: it neither solicits nor takes
			// advertisements, and its addresses need no DAD.
			NDPConfigs: ipv6.NDPConfigurations{HandleRAs: ipv6.HandlingRAsDisabled},
			DADConfigs: stack.DADConfigurations{DupAddrDetectTransmits: 0},
		}))
		transProtos = append(transProtos, icmp.NewProtocol6)
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   netProtos,
		TransportProtocols: transProtos,
		HandleLocal:        false,
	})
	ctx, cancel := context.WithCancel(context.Background())
	st := &Stack{
		cfg:      cfg,
		log:      cfg.Logger,
		s:        s,
		ctx:      ctx,
		cancel:   cancel,
		forwards: map[int]*hostForward{},
		nextID:   1,
	}
	if err := st.setup(ep); err != nil {
		cancel()
		s.Close()
		return nil, err
	}
	return st, nil
}

func (st *Stack) setup(ep stack.LinkEndpoint) error {
	s, cfg := st.s, st.cfg
	tuneTCP(s)

	st.lnk = newLinkTap(st, ep)
	if err := s.CreateNIC(nicID, st.lnk); err != nil {
		return fmt.Errorf("create NIC: %s", err)
	}
	for _, p := range cfg.stackAddrs() {
		proto := ipv4.ProtocolNumber
		if p.Addr().Is6() {
			proto = ipv6.ProtocolNumber
		}
		pa := tcpip.ProtocolAddress{
			Protocol:          proto,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFromSlice(p.Addr().AsSlice()), PrefixLen: p.Bits()},
		}
		if err := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			return fmt.Errorf("add address %s: %s", p, err)
		}
	}
	// Every destination is "local": the forwarders terminate all of it.
	if err := s.SetPromiscuousMode(nicID, true); err != nil {
		return fmt.Errorf("set promiscuous mode: %s", err)
	}
	if err := s.SetSpoofing(nicID, true); err != nil {
		return fmt.Errorf("set spoofing: %s", err)
	}
	routes := []tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nicID}}
	if cfg.IPv6 {
		routes = append(routes, tcpip.Route{Destination: header.IPv6EmptySubnet, NIC: nicID})
	}
	s.SetRouteTable(routes)

	tf := tcp.NewForwarder(s, 0, 2048, st.handleTCP)
	s.SetTransportProtocolHandler(tcp.ProtocolNumber, tf.HandlePacket)
	uf := udp.NewForwarder(s, st.handleUDP)
	s.SetTransportProtocolHandler(udp.ProtocolNumber, uf.HandlePacket)

	st.ping = newPinger(st)
	if !cfg.DisableDNS {
		if err := st.startDNS(); err != nil {
			return err
		}
	}
	if cfg.IPv6 && cfg.Pasta == nil {
		st.wg.Add(1)
		go st.advertiseRouter()
	}
	return nil
}

// tcpBufferMax bounds the stack's TCP buffers. They only span the TAP
// link to the guest, where the round trip is a few microseconds (the host
// socket's own buffers cover the path beyond), so 1 MiB keeps a stream near
// full speed (2 MiB ran a stream about 10% faster, but four of them took
// the process over 20 MiB); at 16 MiB a few bulk streams grew it by tens of
// MiB (bench/rootless-compare.sh: 75 MiB peak RSS, now under 20).
const tcpBufferMax = 1 << 20

// tuneTCP sets buffer sizes and options for throughput over a big-MTU link.
func tuneTCP(s *stack.Stack) {
	sack := tcpip.TCPSACKEnabled(true)
	_ = s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
	mod := tcpip.TCPModerateReceiveBufferOption(true)
	_ = s.SetTransportProtocolOption(tcp.ProtocolNumber, &mod)
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: tcpBufferMax}
	_ = s.SetTransportProtocolOption(tcp.ProtocolNumber, &snd)
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: tcpBufferMax}
	_ = s.SetTransportProtocolOption(tcp.ProtocolNumber, &rcv)
}

// Config returns the stack's configuration with defaults applied.
func (st *Stack) Config() Config { return st.cfg }

// Close stops the stack: port forwards, DNS, relays, and the link endpoint.
// It is idempotent and waits for the stack's goroutines.
func (st *Stack) Close() error {
	st.closeOnce.Do(func() {
		st.cancel()
		st.mu.Lock()
		fs := st.forwards
		st.forwards = map[int]*hostForward{}
		st.mu.Unlock()
		// Closed outside the lock: a forward's goroutine takes it on its
		// way out.
		for _, f := range fs {
			f.close()
		}
		for _, srv := range st.dnsSrvs {
			_ = srv.Shutdown()
		}
		st.ping.close()
		// The relays borrow their endpoints' packets: they end before
		// the stack frees them.
		st.mu.Lock()
		streams := st.streams
		st.streams = nil
		st.mu.Unlock()
		for _, teardown := range streams {
			teardown()
		}
		st.s.Close()
		st.s.Wait()
		st.mu.Lock()
		for c := range st.kconns {
			c.Close()
		}
		st.mu.Unlock()
		st.wg.Wait()
		st.closeWorkers()
		if st.fwd != nil {
			st.fwd.Close()
		}
	})
	return nil
}

func toAddr(a tcpip.Address) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return ip.Unmap()
}

func fromAddr(a netip.Addr) tcpip.Address {
	return tcpip.AddrFromSlice(a.Unmap().AsSlice())
}

func protoOf(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}

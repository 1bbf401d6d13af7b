package usernet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

// Forward is a port forward: connections to HostAddr:HostPort on the host
// are relayed to GuestAddr:GuestPort in the guest.
type Forward struct {
	ID        int    `json:",omitempty"`
	Proto     string // "tcp" or "udp"
	HostAddr  netip.Addr
	HostPort  uint16
	GuestAddr netip.Addr
	GuestPort uint16
	// HostIface, when set, binds the listener to that host interface
	// (SO_BINDTODEVICE; pasta's ADDR%IFACE).
	HostIface string `json:",omitempty"`
	// NetNS, when set, is a network namespace where GuestAddr is
	// reachable (not necessarily behind the stack): TCP connections are
	// opened there by kernel sockets bound to the client's address (see
	// kernelfwd.go). Empty: the guest behind the stack (kernel sockets in
	// Config.GuestNetNS when possible).
	NetNS string `json:",omitempty"`
	// Gateway is the source address the guest sees for clients it cannot
	// route back to (loopback clients) on the kernel path with NetNS
	// (default: the stack's gateway).
	Gateway netip.Addr `json:",omitzero"`
}

// Sentinel errors of the port-forward API.
var (
	ErrForwardNotFound = errors.New("no such port forward")
	ErrBadForward      = errors.New("invalid port forward")
)

type hostForward struct {
	Forward
	ln     net.Listener
	pc     *net.UDPConn
	cancel context.CancelFunc
	done   chan struct{}
}

func (f *hostForward) close() {
	f.cancel()
	if f.ln != nil {
		f.ln.Close()
	}
	if f.pc != nil {
		f.pc.Close()
	}
	<-f.done
}

// AddForward starts a port forward and returns it with its ID. A zero
// HostAddr means 0.0.0.0, a zero GuestAddr the guest's address.
func (st *Stack) AddForward(f Forward) (Forward, error) {
	if f.Proto != "tcp" && f.Proto != "udp" {
		return f, fmt.Errorf("%w: protocol %q: must be tcp or udp", ErrBadForward, f.Proto)
	}
	if !f.HostAddr.IsValid() {
		f.HostAddr = netip.IPv4Unspecified()
	}
	if !f.GuestAddr.IsValid() {
		f.GuestAddr = st.cfg.Guest()
		if f.HostAddr.Unmap().Is6() && st.cfg.Guest6().IsValid() {
			f.GuestAddr = st.cfg.Guest6()
		}
	}
	f.HostAddr, f.GuestAddr = f.HostAddr.Unmap(), f.GuestAddr.Unmap()
	if f.HostPort == 0 || f.GuestPort == 0 {
		return f, fmt.Errorf("%w: ports must be 1-65535", ErrBadForward)
	}
	if f.NetNS != "" && f.Proto != "tcp" {
		return f, fmt.Errorf("%w: a forward into a namespace (%s) is tcp only", ErrBadForward, f.NetNS)
	}
	if f.NetNS == "" && !st.cfg.inGuestNet(f.GuestAddr) {
		return f, fmt.Errorf("%w: guest address %s is not the guest's", ErrBadForward, f.GuestAddr)
	}
	ctx, cancel := context.WithCancel(st.ctx)
	hf := &hostForward{Forward: f, cancel: cancel, done: make(chan struct{})}
	hostAP := netip.AddrPortFrom(f.HostAddr, f.HostPort).String()
	var err error
	network := f.Proto
	if st.cfg.Pasta != nil {
		// pasta binds each family on its own: 0.0.0.0 takes IPv4 only
		// and [::] IPv6 only (Go would open both as one dual-stack
		// socket), so each reaches the guest's address of its family.
		network += map[bool]string{true: "4", false: "6"}[f.HostAddr.Is4()]
	}
	lc := listenConfig(f.HostIface)
	if f.Proto == "tcp" {
		hf.ln, err = lc.Listen(context.Background(), network, hostAP)
	} else {
		var pc net.PacketConn
		if pc, err = lc.ListenPacket(context.Background(), network, hostAP); err == nil {
			hf.pc = pc.(*net.UDPConn)
		}
	}
	if err != nil {
		cancel()
		return f, fmt.Errorf("listen %s/%s: %w", hostAP, f.Proto, err)
	}
	st.mu.Lock()
	if st.ctx.Err() != nil {
		st.mu.Unlock()
		cancel()
		if hf.ln != nil {
			hf.ln.Close()
		} else {
			hf.pc.Close()
		}
		return f, net.ErrClosed
	}
	hf.ID = st.nextID
	st.nextID++
	st.forwards[hf.ID] = hf
	st.mu.Unlock()
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		defer close(hf.done)
		if hf.ln != nil {
			st.serveTCPForward(ctx, hf)
		} else {
			st.serveUDPForward(ctx, hf)
		}
	}()
	return hf.Forward, nil
}

// RemoveForward stops the port forward with the given ID; connections
// already relayed go on.
func (st *Stack) RemoveForward(id int) error {
	st.mu.Lock()
	hf := st.forwards[id]
	delete(st.forwards, id)
	st.mu.Unlock()
	if hf == nil {
		return fmt.Errorf("%w: id %d", ErrForwardNotFound, id)
	}
	hf.close()
	return nil
}

// Forwards lists the active port forwards by ID.
func (st *Stack) Forwards() []Forward {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]Forward, 0, len(st.forwards))
	for _, f := range st.forwards {
		out = append(out, f.Forward)
	}
	slices.SortFunc(out, func(a, b Forward) int { return a.ID - b.ID })
	return out
}

// sourceFor returns the address a forwarded connection from client comes
// from inside the guest: the client's own when the guest can route back to
// it, else the gateway (clients on the host's loopback, in the guest's own
// networks, or of the other address family).
func (st *Stack) sourceFor(client netip.AddrPort, guest netip.Addr) tcpip.FullAddress {
	c := client.Addr().Unmap()
	if st.cfg.Pasta != nil {
		src, keep := st.cfg.Pasta.sourceFor(c, guest)
		if keep {
			return tcpip.FullAddress{NIC: nicID, Addr: fromAddr(src), Port: client.Port()}
		}
		return tcpip.FullAddress{NIC: nicID, Addr: fromAddr(src)}
	}
	gw := st.cfg.Gateway()
	if guest.Is6() {
		gw = st.cfg.Gateway6()
	}
	keep := c.IsValid() && c.Is4() == guest.Is4() &&
		!c.IsLoopback() && !c.IsUnspecified() && !c.IsLinkLocalUnicast() && !c.IsMulticast() &&
		!st.cfg.inGuestNet(c)
	if keep {
		return tcpip.FullAddress{NIC: nicID, Addr: fromAddr(c), Port: client.Port()}
	}
	return tcpip.FullAddress{NIC: nicID, Addr: fromAddr(gw)}
}

func (st *Stack) serveTCPForward(ctx context.Context, hf *hostForward) {
	guest := tcpip.FullAddress{NIC: nicID, Addr: fromAddr(hf.GuestAddr), Port: hf.GuestPort}
	// The kernel path, when the guest's namespace can be prepared for it.
	nsPath := hf.NetNS
	if nsPath == "" && (hf.GuestAddr == st.cfg.Guest() || hf.GuestAddr == st.cfg.Guest6()) {
		// Only the address --configure gave the TAP is known to be the
		// guest's own.
		nsPath = st.cfg.GuestNetNS
	}
	var kw *nsWorker
	if nsPath != "" {
		w, err := st.kernelNS(nsPath)
		defer st.releaseNS(nsPath)
		switch {
		case err == nil:
			kw = w
			st.log.Debug("forward: kernel path", "netns", nsPath, "guest", hf.GuestAddr, "port", hf.GuestPort)
		case hf.NetNS != "":
			st.log.Error("forward: cannot open sockets in the guest namespace", "netns", nsPath, "err", err)
		default:
			st.log.Info("forward: user-mode path (kernel forwarding unavailable)", "netns", nsPath, "err", err)
		}
	}
	// Dials in flight finish before the worker may go (releaseNS above
	// runs after this).
	var dials sync.WaitGroup
	defer dials.Wait()
	for {
		c, err := hf.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		st.wg.Add(1)
		if kw != nil {
			dials.Add(1)
		}
		go func() {
			defer st.wg.Done()
			client := c.RemoteAddr().(*net.TCPAddr).AddrPort()
			if kw != nil {
				src, dst := st.kernelSource(client, hf), netip.AddrPortFrom(hf.GuestAddr, hf.GuestPort)
				if st.cfg.Pasta != nil && hf.NetNS == "" && client.Addr().Unmap().IsLoopback() {
					// pasta's splice path: a local client reaches the
					// guest's loopback, from the guest's loopback.
					src, dst = netip.AddrPort{}, netip.AddrPortFrom(loopbackOf(hf.GuestAddr), hf.GuestPort)
				}
				gc, err := kw.dial(src, dst)
				dials.Done()
				if err != nil {
					st.log.Debug("forward: guest refused", "guest", hf.GuestAddr, "port", hf.GuestPort, "err", err)
					c.Close()
					return
				}
				st.spliceRelay(gc, c.(*net.TCPConn))
				return
			}
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			gc, err := gonet.DialTCPWithBind(dctx, st.s, st.sourceFor(client, hf.GuestAddr), guest, protoOf(hf.GuestAddr))
			cancel()
			if err != nil {
				st.log.Debug("forward: guest refused", "guest", hf.GuestAddr, "port", hf.GuestPort, "err", err)
				c.Close()
				return
			}
			relay(gc, c.(*net.TCPConn), false)
		}()
	}
}

// kernelSource is the source address of a kernel-path connection: the
// client's own, unless the guest could not tell it from itself (loopback,
// unspecified, link-local, the stack's own network) or it is of the other
// family; then the gateway.
func (st *Stack) kernelSource(client netip.AddrPort, hf *hostForward) netip.AddrPort {
	c := client.Addr().Unmap()
	if st.cfg.Pasta != nil {
		src, keep := st.cfg.Pasta.sourceFor(c, hf.GuestAddr)
		if keep {
			return netip.AddrPortFrom(src, client.Port())
		}
		return netip.AddrPortFrom(src, 0)
	}
	keep := c.IsValid() && c.Is4() == hf.GuestAddr.Is4() &&
		!c.IsLoopback() && !c.IsUnspecified() && !c.IsLinkLocalUnicast() && !c.IsMulticast() &&
		!st.cfg.inGuestNet(c)
	if keep {
		return netip.AddrPortFrom(c, client.Port())
	}
	gw := hf.Gateway
	if !gw.IsValid() || gw.Is4() != hf.GuestAddr.Is4() {
		gw = st.cfg.Gateway()
		if hf.GuestAddr.Is6() {
			gw = st.cfg.Gateway6()
		}
	}
	return netip.AddrPortFrom(gw, 0)
}

// serveUDPForward relays datagrams from each client (address and port) to
// the guest over a flow of its own, and the guest's answers back.
func (st *Stack) serveUDPForward(ctx context.Context, hf *hostForward) {
	guest := tcpip.FullAddress{NIC: nicID, Addr: fromAddr(hf.GuestAddr), Port: hf.GuestPort}
	var mu sync.Mutex // guards flows
	flows := map[netip.AddrPort]*gonet.UDPConn{}
	defer func() {
		mu.Lock()
		for _, f := range flows {
			f.Close()
		}
		mu.Unlock()
	}()
	buf := make([]byte, 65536)
	for {
		n, from, err := hf.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		mu.Lock()
		gc := flows[from]
		if gc == nil {
			local := st.sourceFor(from, hf.GuestAddr)
			gc, err = gonet.DialUDP(st.s, &local, &guest, protoOf(hf.GuestAddr))
			if err != nil {
				mu.Unlock()
				continue
			}
			flows[from] = gc
			st.wg.Add(1)
			go func() {
				defer st.wg.Done()
				rb := make([]byte, 65536)
				for {
					_ = gc.SetReadDeadline(time.Now().Add(udpIdle))
					n, err := gc.Read(rb)
					if err != nil {
						break
					}
					_, _ = hf.pc.WriteToUDPAddrPort(rb[:n], from)
				}
				mu.Lock()
				if flows[from] == gc {
					delete(flows, from)
				}
				mu.Unlock()
				gc.Close()
			}()
		}
		mu.Unlock()
		_, _ = gc.Write(buf[:n])
	}
}

// loopbackOf is the loopback address of a's family.
func loopbackOf(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return netip.IPv6Loopback()
}

// listenConfig binds listeners to iface when it is set.
func listenConfig(iface string) net.ListenConfig {
	if iface == "" {
		return net.ListenConfig{}
	}
	return net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), iface) }); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("bind to interface %s: %w", iface, serr)
		}
		return nil
	}}
}

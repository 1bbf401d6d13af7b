package usernet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// NSForward is a forward in the other direction, pasta's -T and -U:
// connections to NSPort on the guest's loopback (127.0.0.1 and ::1 in
// Config.GuestNetNS) reach HostPort on the host's loopback.
type NSForward struct {
	Proto            string // "tcp" or "udp"
	NSPort, HostPort uint16
}

// AddNSForward listens on the guest's loopback for f and relays to the
// host's until the stack closes. It needs a guest namespace this process
// may enter (Config.GuestNetNS).
func (st *Stack) AddNSForward(f NSForward) error {
	_, err := st.addNSForward(f)
	return err
}

// addNSForward is AddNSForward; stop ends the forward early.
func (st *Stack) addNSForward(f NSForward) (stop func(), err error) {
	if f.Proto != "tcp" && f.Proto != "udp" {
		return nil, fmt.Errorf("%w: protocol %q: must be tcp or udp", ErrBadForward, f.Proto)
	}
	if f.NSPort == 0 || f.HostPort == 0 {
		return nil, fmt.Errorf("%w: ports must be 1-65535", ErrBadForward)
	}
	if st.cfg.GuestNetNS == "" {
		return nil, fmt.Errorf("%w: a namespace-to-host forward needs the guest's namespace", ErrBadForward)
	}
	w, werr := st.kernelNS(st.cfg.GuestNetNS)
	if err = werr; err != nil {
		st.releaseNS(st.cfg.GuestNetNS)
		return nil, fmt.Errorf("enter the guest's namespace: %w", err)
	}
	var (
		lns []net.Listener
		pcs []net.PacketConn
	)
	loopbacks := []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}
	w.w.Do(func() {
		for i, lo := range loopbacks {
			ap := netip.AddrPortFrom(lo, f.NSPort).String()
			var lerr error
			if f.Proto == "tcp" {
				var ln net.Listener
				if ln, lerr = net.Listen("tcp", ap); lerr == nil {
					lns = append(lns, ln)
				}
			} else {
				var pc net.PacketConn
				if pc, lerr = net.ListenPacket("udp", ap); lerr == nil {
					pcs = append(pcs, pc)
				}
			}
			if lerr != nil && i == 0 { // no IPv6 in the guest is fine
				err = lerr
			}
		}
	})
	if err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		for _, pc := range pcs {
			pc.Close()
		}
		st.releaseNS(st.cfg.GuestNetNS)
		return nil, fmt.Errorf("listen on the guest's loopback, port %d/%s: %w", f.NSPort, f.Proto, err)
	}
	return st.serveNSForward(f, lns, pcs), nil
}

// serveNSForward runs the relays of one namespace-to-host forward; they
// end when the stack closes or stop is called.
func (st *Stack) serveNSForward(f NSForward, lns []net.Listener, pcs []net.PacketConn) (stop func()) {
	st.mu.Lock()
	if st.nsForwards == nil {
		st.nsForwards = map[NSForward]int{}
	}
	st.nsForwards[f]++
	st.mu.Unlock()
	ctx, cancel := context.WithCancel(st.ctx)
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.acceptToHost(ctx, ln, f.HostPort)
		}()
	}
	for _, pc := range pcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.datagramsToHost(ctx, pc, f.HostPort)
		}()
	}
	ended := make(chan struct{})
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		defer close(ended)
		<-ctx.Done()
		for _, ln := range lns {
			ln.Close()
		}
		for _, pc := range pcs {
			pc.Close()
		}
		wg.Wait()
		st.mu.Lock()
		if st.nsForwards[f]--; st.nsForwards[f] <= 0 {
			delete(st.nsForwards, f)
		}
		st.mu.Unlock()
		st.releaseNS(st.cfg.GuestNetNS)
	}()
	return func() { cancel(); <-ended }
}

// hostLoopback is the host's loopback of the family of a listener's
// address.
func hostLoopback(a net.Addr, port uint16) netip.AddrPort {
	var ip netip.Addr
	switch a := a.(type) {
	case *net.TCPAddr:
		ip = a.AddrPort().Addr()
	case *net.UDPAddr:
		ip = a.AddrPort().Addr()
	}
	return netip.AddrPortFrom(loopbackOf(ip.Unmap()), port)
}

// acceptToHost relays each connection accepted in the guest to the host's
// loopback, spliced.
func (st *Stack) acceptToHost(ctx context.Context, ln net.Listener, port uint16) {
	to := hostLoopback(ln.Addr(), port)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			ctx, cancel := context.WithTimeout(st.ctx, dialTimeout)
			hc, err := (&net.Dialer{}).DialContext(ctx, "tcp", to.String())
			cancel()
			if err != nil {
				st.log.Debug("namespace forward: host refused", "to", to, "err", err)
				c.Close()
				return
			}
			st.spliceRelay(c.(*net.TCPConn), hc.(*net.TCPConn))
		}()
	}
}

// datagramsToHost relays each guest client's datagrams to the host's
// loopback over a socket of its own, and the answers back.
func (st *Stack) datagramsToHost(ctx context.Context, pc net.PacketConn, port uint16) {
	to := net.UDPAddrFromAddrPort(hostLoopback(pc.LocalAddr(), port))
	var mu sync.Mutex
	flows := map[string]*net.UDPConn{}
	defer func() {
		mu.Lock()
		for _, f := range flows {
			f.Close()
		}
		mu.Unlock()
	}()
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		mu.Lock()
		hc := flows[from.String()]
		if hc == nil {
			if hc, err = net.DialUDP("udp", nil, to); err != nil {
				mu.Unlock()
				continue
			}
			flows[from.String()] = hc
			st.wg.Add(1)
			go func() {
				defer st.wg.Done()
				rb := make([]byte, 65536)
				for {
					_ = hc.SetReadDeadline(time.Now().Add(udpIdle))
					n, err := hc.Read(rb)
					if err != nil {
						break
					}
					_, _ = pc.WriteTo(rb[:n], from)
				}
				mu.Lock()
				delete(flows, from.String())
				mu.Unlock()
				hc.Close()
			}()
		}
		mu.Unlock()
		_, _ = hc.Write(buf[:n])
	}
}

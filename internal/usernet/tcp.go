package usernet

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// dialTimeout bounds an outbound connect; the guest retransmits its SYN
// meanwhile.
const dialTimeout = 30 * time.Second

// handleTCP relays a guest connection (a SYN no listener in the stack
// took) to the host: it connects first and answers the guest with a reset
// when that fails, so the guest sees "connection refused" as it would.
func (st *Stack) handleTCP(r *tcp.ForwarderRequest) {
	id := r.ID()
	dst := toAddr(id.LocalAddress)
	host, ok := st.cfg.Translate(dst)
	if !ok {
		r.Complete(true)
		return
	}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		ctx, cancel := context.WithTimeout(st.ctx, dialTimeout)
		hc, err := st.dialer(host).DialContext(ctx, "tcp", netip.AddrPortFrom(host, id.LocalPort).String())
		cancel()
		if err != nil {
			st.log.Debug("tcp connect failed", "dst", dst, "port", id.LocalPort, "err", err)
			r.Complete(true)
			return
		}
		var wq waiter.Queue
		ep, terr := r.CreateEndpoint(&wq)
		if terr != nil {
			r.Complete(true)
			hc.Close()
			return
		}
		r.Complete(false)
		ep.SocketOptions().SetKeepAlive(true)
		st.relayGuest(newGuestStream(ep, &wq), hc.(*net.TCPConn))
	}()
}

// relayGuest relays a guest's connection to the host's: the guest's bytes
// go out without a copy (guestStream), the host's come in through the
// relay buffer. Like relay, it passes half-closes on and tears both down
// on an error. The stack's Close ends it.
func (st *Stack) relayGuest(g *guestStream, hc *net.TCPConn) {
	teardown := func() {
		hc.Close() // first: a write waiting for the host holds g
		g.close()
	}
	if !st.trackStream(hc, teardown) {
		teardown()
		return
	}
	defer st.untrackStream(hc)
	gc := gonet.NewTCPConn(g.wq, g.ep)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := g.writeTo(hc); err != nil {
			teardown()
			return
		}
		_ = hc.CloseWrite()
	}()
	go func() {
		defer wg.Done()
		bp := relayBufs.Get().(*[]byte)
		_, err := io.CopyBuffer(struct{ io.Writer }{gc}, struct{ io.Reader }{hc}, *bp)
		relayBufs.Put(bp)
		if err != nil {
			teardown()
			return
		}
		_ = gc.CloseWrite()
	}()
	wg.Wait()
	teardown()
}

// trackStream records a relayed connection's teardown for the stack's
// Close; false when the stack is already closing.
func (st *Stack) trackStream(hc *net.TCPConn, teardown func()) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ctx.Err() != nil {
		return false
	}
	if st.streams == nil {
		st.streams = map[*net.TCPConn]func(){}
	}
	st.streams[hc] = teardown
	return true
}

func (st *Stack) untrackStream(hc *net.TCPConn) {
	st.mu.Lock()
	delete(st.streams, hc)
	st.mu.Unlock()
}

// dialer returns a dialer bound to the outbound address of host's family.
func (st *Stack) dialer(host netip.Addr) *net.Dialer {
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	if ip := st.outboundIP(host); ip != nil {
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	return d
}

// outboundIP is the host address relayed connections to host are bound to
// (--outbound-addr, --outbound-addr6), or nil: the kernel chooses. The
// host's loopback is never reached from an outbound address.
func (st *Stack) outboundIP(host netip.Addr) net.IP {
	switch {
	case host.IsLoopback():
	case host.Is4() && st.cfg.OutboundAddr.IsValid():
		return st.cfg.OutboundAddr.AsSlice()
	case host.Is6() && st.cfg.OutboundAddr6.IsValid():
		return st.cfg.OutboundAddr6.AsSlice()
	}
	return nil
}

// relayBufs holds the copy buffers of TCP relays, one per direction of a
// connection for its whole life: 128 KiB moves a stream as fast as 256 KiB
// did here (the stack is CPU-bound either way) at half the memory.
var relayBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// halfCloser is a stream that can shut down its write side.
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// relay copies both ways until both directions end, passing half-closes
// on, then closes both connections. Between two kernel sockets (splice)
// io.Copy splices; otherwise the copy goes through the big relay buffer.
func relay(a, b halfCloser, splice bool) {
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src halfCloser) {
		defer wg.Done()
		var err error
		if splice {
			_, err = io.Copy(dst, src)
		} else {
			bp := relayBufs.Get().(*[]byte)
			// Hide ReadFrom/WriteTo so the copy uses the big buffer: fewer
			// system calls per byte on the host side.
			_, err = io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *bp)
			relayBufs.Put(bp)
		}
		if err != nil && !errors.Is(err, net.ErrClosed) {
			// A reset on one side: tear down both at once.
			a.Close()
			b.Close()
			return
		}
		_ = dst.CloseWrite()
	}
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}

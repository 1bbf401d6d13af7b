package usernet

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// udpIdle is how long a UDP flow lives without traffic (libslirp: 240 s).
const udpIdle = 240 * time.Second

// handleUDP relays a new guest UDP flow (source address and port to
// destination address and port) through a connected host socket.
func (st *Stack) handleUDP(r *udp.ForwarderRequest) {
	id := r.ID()
	dst := toAddr(id.LocalAddress)
	host, ok := st.cfg.Translate(dst)
	if !ok {
		return
	}
	var laddr *net.UDPAddr
	if ip := st.outboundIP(host); ip != nil {
		laddr = &net.UDPAddr{IP: ip}
	}
	hc, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(netip.AddrPortFrom(host, id.LocalPort)))
	if err != nil {
		st.log.Debug("udp connect failed", "dst", dst, "port", id.LocalPort, "err", err)
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		hc.Close()
		return
	}
	gc := gonet.NewUDPConn(&wq, ep)
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		relayPackets(gc, hc, udpIdle)
	}()
}

// relayPackets copies datagrams both ways between two connected packet
// conns until neither direction has carried anything for idle, or one
// side fails; then it closes both.
func relayPackets(a, b net.Conn, idle time.Duration) {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var once sync.Once
	stop := func() {
		once.Do(func() {
			a.Close()
			b.Close()
		})
	}
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		defer stop()
		buf := make([]byte, 65536)
		for {
			_ = src.SetReadDeadline(time.Now().Add(idle))
			n, err := src.Read(buf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) && time.Since(time.Unix(0, last.Load())) < idle {
					continue
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, last.Load())) < idle {
					continue
				}
				if isRefused(err) {
					// An ICMP port unreachable for an earlier datagram;
					// the flow itself goes on.
					continue
				}
				return
			}
			last.Store(time.Now().UnixNano())
			if _, err := dst.Write(buf[:n]); err != nil && !isRefused(err) {
				return
			}
		}
	}
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
}

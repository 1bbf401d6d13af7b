package usernet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
)

// Kernel forwarding: a TCP port forward whose guest lives in a network
// namespace this process may enter is carried by kernel sockets instead of
// the user-mode stack. The host side is the accepted socket; the guest side
// is a socket opened inside the guest's namespace with IP_TRANSPARENT and
// bound to the client's own address, so the guest sees who connects (as
// the user-mode path does) at the speed of a plain socket copy (splice).
//
// The guest's answers to that foreign address must come back to the
// socket rather than leave by the default route: the socket carries a
// firewall mark, the namespace accepts connections with the mark of their
// SYN (net.ipv4.tcp_fwmark_accept), and a rule sends marked traffic to a
// table whose default route is local:
//
//	sysctl net.ipv4.tcp_fwmark_accept=1
//	ip rule add fwmark 0x62727468 lookup 25204 pref 100      (and -6)
//	ip route add local default dev lo table 25204            (and -6)
//
// This needs CAP_NET_ADMIN in the namespace's user namespace: berth's
// rootless namespaces, or a user-mode network run inside the container's
// user namespace. Without it forwards fall back to the user-mode stack.
const (
	kernelFwdMark  = 0x62727468 // "brth"
	kernelFwdTable = 25204
	kernelFwdPref  = 100
)

// nsWorker is a goroutine locked to a thread inside a namespace that opens
// sockets there (the thread never leaves: a process in a user namespace
// may not be able to return to the namespace it came from).
type nsWorker struct {
	w    *netns.Worker
	err  error // preparing the namespace failed
	once sync.Once
	refs int // forwards using it (guarded by Stack.mu)
}

// kernelNS returns the worker of the namespace at path, preparing the
// namespace on first use.
func (st *Stack) kernelNS(path string) (*nsWorker, error) {
	st.mu.Lock()
	w := st.workers[path]
	if w == nil {
		w = &nsWorker{}
		if st.workers == nil {
			st.workers = map[string]*nsWorker{}
		}
		st.workers[path] = w
	}
	w.refs++
	st.mu.Unlock()
	w.once.Do(func() { w.w, w.err = netns.NewWorker(path, prepareKernelFwd) })
	return w, w.err
}

// releaseNS drops a forward's use of a namespace worker; the last one
// ends it (its thread exits), so a container that goes leaves no thread
// behind and a namespace pinned again at the same path gets a new one.
func (st *Stack) releaseNS(path string) {
	st.mu.Lock()
	w := st.workers[path]
	if w != nil {
		w.refs--
		if w.refs > 0 {
			w = nil
		} else {
			delete(st.workers, path)
		}
	}
	st.mu.Unlock()
	if w != nil && w.err == nil && w.w != nil {
		w.w.Close()
	}
}

// prepareKernelFwd sets the calling thread's namespace up for transparent
// sockets (see above); it is idempotent.
func prepareKernelFwd() error {
	if err := os.WriteFile("/proc/sys/net/ipv4/tcp_fwmark_accept", []byte("1"), 0); err != nil {
		return fmt.Errorf("tcp_fwmark_accept: %w", err)
	}
	h, err := link.NewHandle(nil)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.Link("lo")
	if err != nil {
		return err
	}
	for _, v6 := range []bool{false, true} {
		rule := link.MarkRule{IPv6: v6, Mark: kernelFwdMark, Table: kernelFwdTable, Priority: kernelFwdPref}
		if err := h.AddMarkRule(rule); err != nil {
			if v6 && (errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EOPNOTSUPP)) {
				continue
			}
			return fmt.Errorf("ip rule fwmark: %w", err)
		}
		dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if v6 {
			dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		r := link.Route{Dev: lo.Index, Dst: dst, Table: kernelFwdTable, Type: link.RouteLocal, Scope: link.ScopeHost}
		if err := h.ReplaceRoute(r); err != nil {
			if v6 {
				continue // no IPv6 in the guest: IPv4 clients still work
			}
			return fmt.Errorf("local route table %d: %w", kernelFwdTable, err)
		}
	}
	return nil
}

// dial opens a TCP connection from src (a foreign address: the client's)
// to dst inside the worker's namespace.
func (w *nsWorker) dial(src, dst netip.AddrPort) (*net.TCPConn, error) {
	type result struct {
		fd  int
		err error
	}
	var r result
	w.w.Do(func() {
		r.fd, r.err = transparentSocket(src, dst)
	})
	if r.err != nil {
		return nil, r.err
	}
	f := os.NewFile(uintptr(r.fd), "guest")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, errors.New("guest socket is not TCP")
	}
	return tc, nil
}

// transparentSocket creates, binds and connects the guest-side socket on
// the calling thread (inside the namespace). The connect is blocking with
// a short timeout: the guest is local to the namespace. An invalid src
// gives a plain socket the kernel binds (pasta's splice to the guest's
// loopback).
func transparentSocket(src, dst netip.AddrPort) (int, error) {
	fam, level, opt := unix.AF_INET, unix.SOL_IP, unix.IP_TRANSPARENT
	if dst.Addr().Is6() {
		fam, level, opt = unix.AF_INET6, unix.SOL_IPV6, unix.IPV6_TRANSPARENT
	}
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	fail := func(what string, err error) (int, error) {
		unix.Close(fd)
		return -1, fmt.Errorf("guest socket: %s: %w", what, err)
	}
	tv := unix.NsecToTimeval(int64(3 * time.Second))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	if src.Addr().IsValid() {
		if err := bindForeign(fd, level, opt, src); err != nil {
			return fail("bind", err)
		}
	}
	for {
		err = unix.Connect(fd, sockaddr(dst))
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fail("connect", err)
	}
	zero := unix.Timeval{}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &zero)
	return fd, nil
}

// bindForeign binds fd to a foreign address (the client's), marked so the
// guest's answers come back to it.
func bindForeign(fd, level, opt int, src netip.AddrPort) error {
	if err := unix.SetsockoptInt(fd, level, opt, 1); err != nil {
		return fmt.Errorf("transparent: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, kernelFwdMark); err != nil {
		return fmt.Errorf("mark: %w", err)
	}
	if err := unix.Bind(fd, sockaddr(src)); err != nil {
		// The client's port is taken in the guest: keep its address.
		if !errors.Is(err, unix.EADDRINUSE) {
			return err
		}
		return unix.Bind(fd, sockaddr(netip.AddrPortFrom(src.Addr(), 0)))
	}
	return nil
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

// spliceRelay relays two kernel sockets (spliced), which the stack closes
// when it stops.
func (st *Stack) spliceRelay(a, b *net.TCPConn) {
	st.mu.Lock()
	if st.kconns == nil {
		st.kconns = map[*net.TCPConn]struct{}{}
	}
	closed := st.ctx.Err() != nil
	st.kconns[a], st.kconns[b] = struct{}{}, struct{}{}
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		delete(st.kconns, a)
		delete(st.kconns, b)
		st.mu.Unlock()
	}()
	if closed {
		a.Close()
		b.Close()
		return
	}
	relay(a, b, true)
}

// closeWorkers ends the namespace workers (their threads exit).
func (st *Stack) closeWorkers() {
	st.mu.Lock()
	ws := st.workers
	st.workers = nil
	st.mu.Unlock()
	for _, w := range ws {
		if w.err == nil && w.w != nil {
			w.w.Close()
		}
	}
}

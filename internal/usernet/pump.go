package usernet

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Limits of one write to the host: what one writev takes at most.
const (
	pumpMaxBytes = 512 << 10
	pumpMaxIovs  = 256
)

// errPumpFull stops a peek once a write's worth of bytes is borrowed.
var errPumpFull = errors.New("usernet: write batch full")

// guestStream is the guest's side of a relayed TCP connection. Its
// received bytes go to the host socket straight from the packets that
// carried them: the stack's receive queue is peeked at, written with one
// writev, and only what the kernel took is consumed. A user-space copy of
// every byte (the largest cost of a bulk upload after the system calls)
// is saved.
//
// The peeked bytes belong to the endpoint's queued segments, which only
// this stream's reads and the endpoint's Close release: mu is held from
// the peek to the consume, and close takes it, so the endpoint is never
// closed while its bytes are being written.
type guestStream struct {
	ep tcpip.Endpoint
	wq *waiter.Queue

	mu     sync.Mutex
	closed bool
	done   chan struct{} // closed by close
}

func newGuestStream(ep tcpip.Endpoint, wq *waiter.Queue) *guestStream {
	return &guestStream{ep: ep, wq: wq, done: make(chan struct{})}
}

// close closes the endpoint once no write borrows its bytes.
func (g *guestStream) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.closed = true
	close(g.done)
	g.ep.Close()
}

// writeTo moves the guest's bytes to c until the guest closes its side
// (nil) or either side fails. c must be closed before g.close when both
// are torn down from elsewhere: a write waiting for c to drain holds mu.
func (g *guestStream) writeTo(c *net.TCPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	entry, readable := waiter.NewChannelEntry(waiter.ReadableEvents | waiter.EventHUp | waiter.EventErr)
	g.wq.EventRegister(&entry)
	defer g.wq.EventUnregister(&entry)
	var b borrowed
	for {
		err := g.move(rc, &b)
		switch {
		case err == nil:
			continue
		case errors.Is(err, errGuestWait):
			select {
			case <-readable:
			case <-g.done:
				return net.ErrClosed
			}
		case errors.Is(err, errGuestEOF):
			return nil
		default:
			return err
		}
	}
}

// errGuestEOF is the guest having closed its sending side; errGuestWait
// its having sent nothing new.
var (
	errGuestEOF  = errors.New("usernet: guest closed its side")
	errGuestWait = errors.New("usernet: nothing received")
)

// move writes what the endpoint holds with one writev (waiting for the
// host socket to take some of it) and consumes what was written.
func (g *guestStream) move(rc syscall.RawConn, b *borrowed) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return net.ErrClosed
	}
	b.reset()
	if _, terr := g.ep.Read(b, tcpip.ReadOptions{Peek: true}); terr != nil {
		switch terr.(type) {
		case *tcpip.ErrWouldBlock:
			return errGuestWait
		case *tcpip.ErrClosedForReceive:
			return errGuestEOF
		}
		return fmt.Errorf("guest connection: %s", terr)
	}
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		n, werr = b.writev(int(fd))
		return werr != unix.EAGAIN
	})
	if n > 0 {
		d := discard(n)
		if _, terr := g.ep.Read(&d, tcpip.ReadOptions{}); terr != nil {
			return fmt.Errorf("guest connection: consume %d bytes: %s", n, terr)
		}
	}
	if err != nil {
		return err
	}
	if werr != nil {
		return &net.OpError{Op: "write", Net: "tcp", Err: werr}
	}
	return nil
}

// borrowed is an io.Writer that keeps the slices it is given (instead of
// copying them) as the iovecs of one writev. The slices are only valid
// while the endpoint holds the segments they belong to.
type borrowed struct {
	iov  []unix.Iovec
	size int
}

func (b *borrowed) reset() {
	clear(b.iov) // drop the pointers into released packets
	b.iov = b.iov[:0]
	b.size = 0
}

// Write implements io.Writer without copying p.
func (b *borrowed) Write(p []byte) (int, error) {
	if len(b.iov) > 0 && (len(b.iov) == pumpMaxIovs || b.size+len(p) > pumpMaxBytes) {
		return 0, errPumpFull
	}
	if len(p) == 0 {
		return 0, nil
	}
	var v unix.Iovec
	v.Base = &p[0]
	v.SetLen(len(p))
	b.iov = append(b.iov, v)
	b.size += len(p)
	return len(p), nil
}

// writev writes the borrowed slices to fd.
func (b *borrowed) writev(fd int) (int, error) {
	if len(b.iov) == 0 {
		return 0, nil
	}
	for {
		n, _, errno := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&b.iov[0])), uintptr(len(b.iov)))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(n), nil
	}
}

// discard consumes the first n bytes it is given.
type discard int

// Write implements io.Writer: it takes all of p while n lasts.
func (d *discard) Write(p []byte) (int, error) {
	if len(p) <= int(*d) {
		*d -= discard(len(p))
		return len(p), nil
	}
	n := int(*d)
	*d = 0
	return n, errPumpFull
}

package usernet

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/rawfile"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/stopfd"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// vnetGSOMaxSize is the largest packet the stack hands the guest: TCP
// super-segments up to the largest IPv4 packet.
const vnetGSOMaxSize = 1 << 16

// vnetReadSizes are the buffers one read from the TAP fills: small frames
// (acknowledgements) use only the first; together they hold the largest
// frame, an Ethernet header and a 64 KiB IP packet. Only the buffers a
// frame used are replaced before the next read.
var vnetReadSizes = []int{128, 2048, 2048, 4096, 8192, 16384, 32768}

// vnetEndpoint is a gVisor link endpoint on a TAP opened with
// IFF_VNET_HDR and TCP segmentation offload (see openTAPHere). The guest
// hands it TCP super-segments of up to 64 KiB whatever the link's MTU, and
// it hands the guest the same (host GSO): the guest's kernel takes them
// as if its NIC had coalesced them. Neither side computes or checks TCP
// checksums: the header's NEEDS_CSUM marks them as not filled in.
type vnetEndpoint struct {
	fd     int
	addr   tcpip.LinkAddress
	closed func(tcpip.Error)
	stop   stopfd.StopFD

	closeOnce sync.Once

	mtu atomic.Uint32

	// mu guards addr and dispatcher. Attach(nil) lets go of it before
	// waiting for the reader, which may ask for the link address while
	// it delivers a packet.
	mu         sync.Mutex
	dispatcher stack.NetworkDispatcher
	wg         sync.WaitGroup

	// superIn and superOut count super-segments (frames with a GSO type)
	// received from and sent to the guest.
	superIn, superOut atomic.Uint64
}

var (
	_ stack.LinkEndpoint = (*vnetEndpoint)(nil)
	_ stack.GSOEndpoint  = (*vnetEndpoint)(nil)
)

func newVnetEndpoint(fd int, mtu uint32, addr tcpip.LinkAddress, closed func(tcpip.Error)) (*vnetEndpoint, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, err
	}
	stop, err := stopfd.New()
	if err != nil {
		return nil, err
	}
	e := &vnetEndpoint{fd: fd, addr: addr, closed: closed, stop: stop}
	e.mtu.Store(mtu)
	return e, nil
}

// MTU implements stack.LinkEndpoint.
func (e *vnetEndpoint) MTU() uint32 { return e.mtu.Load() }

// SetMTU implements stack.LinkEndpoint.
func (e *vnetEndpoint) SetMTU(mtu uint32) { e.mtu.Store(mtu) }

// MaxHeaderLength implements stack.LinkEndpoint.
func (*vnetEndpoint) MaxHeaderLength() uint16 { return header.EthernetMinimumSize }

// LinkAddress implements stack.LinkEndpoint.
func (e *vnetEndpoint) LinkAddress() tcpip.LinkAddress {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addr
}

// SetLinkAddress implements stack.LinkEndpoint.
func (e *vnetEndpoint) SetLinkAddress(addr tcpip.LinkAddress) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addr = addr
}

// Capabilities implements stack.LinkEndpoint: the guest's checksums are
// not checked (they are partial, or the guest's kernel made them).
func (*vnetEndpoint) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityRXChecksumOffload | stack.CapabilityResolutionRequired
}

// GSOMaxSize implements stack.GSOEndpoint.
func (*vnetEndpoint) GSOMaxSize() uint32 { return vnetGSOMaxSize }

// SupportedGSO implements stack.GSOEndpoint.
func (*vnetEndpoint) SupportedGSO() stack.SupportedGSO { return stack.HostGSOSupported }

// Attach implements stack.LinkEndpoint: it starts reading the TAP, or with
// nil stops reading and waits for the reader to end.
func (e *vnetEndpoint) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	old := e.dispatcher
	if d == nil && old != nil {
		e.dispatcher = nil
		e.mu.Unlock()
		e.stop.Stop()
		e.wg.Wait()
		return
	}
	defer e.mu.Unlock()
	if d != nil && old == nil {
		e.dispatcher = d
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			err := e.readLoop(d)
			if e.closed != nil {
				e.closed(err)
			}
		}()
	}
}

// IsAttached implements stack.LinkEndpoint.
func (e *vnetEndpoint) IsAttached() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dispatcher != nil
}

// Wait implements stack.LinkEndpoint.
func (e *vnetEndpoint) Wait() { e.wg.Wait() }

// ARPHardwareType implements stack.LinkEndpoint.
func (*vnetEndpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }

// AddHeader implements stack.LinkEndpoint.
func (*vnetEndpoint) AddHeader(pkt *stack.PacketBuffer) {
	eth := header.Ethernet(pkt.LinkHeader().Push(header.EthernetMinimumSize))
	eth.Encode(&header.EthernetFields{
		SrcAddr: pkt.EgressRoute.LocalLinkAddress,
		DstAddr: pkt.EgressRoute.RemoteLinkAddress,
		Type:    pkt.NetworkProtocolNumber,
	})
}

// ParseHeader implements stack.LinkEndpoint.
func (*vnetEndpoint) ParseHeader(pkt *stack.PacketBuffer) bool {
	_, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	return ok
}

// Close implements stack.LinkEndpoint: it stops the reader and releases
// its stop event; the TAP descriptor belongs to the caller.
func (e *vnetEndpoint) Close() {
	e.Attach(nil)
	e.closeOnce.Do(func() { unix.Close(e.stop.EFD) })
}

// SetOnCloseAction implements stack.LinkEndpoint.
func (*vnetEndpoint) SetOnCloseAction(func()) {}

// WritePackets implements stack.LinkEndpoint: one writev per frame, the
// virtio header first. A TAP takes frames without blocking.
func (e *vnetEndpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	for _, pkt := range pkts.AsSlice() {
		if err := e.writePacket(pkt); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (e *vnetEndpoint) writePacket(pkt *stack.PacketBuffer) tcpip.Error {
	var hdr [vnetHdrSize]byte
	h := vnetHdrFor(pkt.GSOOptions, pkt.HeaderSize(), pkt.Data().Size())
	h.encode(hdr[:])
	views := pkt.AsSlices()
	var arr [8]unix.Iovec
	iovecs := arr[:0]
	limit := min(1+len(views), rawfile.MaxIovs)
	iovecs = rawfile.AppendIovecFromBytes(iovecs, hdr[:], limit)
	for _, v := range views {
		iovecs = rawfile.AppendIovecFromBytes(iovecs, v, limit)
	}
	if errno := rawfile.NonBlockingWriteIovec(e.fd, iovecs); errno != 0 {
		return tcpip.TranslateErrno(errno)
	}
	if h.gsoType != vnetGSONone {
		e.superOut.Add(1)
	}
	return nil
}

// readLoop reads frames until the TAP fails or Attach(nil) stops it.
func (e *vnetEndpoint) readLoop(d stack.NetworkDispatcher) tcpip.Error {
	rb := newVnetReadBuf()
	defer rb.release()
	for {
		n, errno := rawfile.BlockingReadvUntilStopped(e.stop.EFD, e.fd, rb.iovecs())
		if n == -1 {
			return nil // stopped
		}
		if errno != 0 {
			return tcpip.TranslateErrno(errno)
		}
		if n == 0 {
			return &tcpip.ErrClosedForReceive{}
		}
		h, _ := decodeVnetHdr(rb.hdr[:])
		payload := rb.pull(n - vnetHdrSize)
		if n < vnetHdrSize+header.EthernetMinimumSize || !h.acceptable() {
			payload.Release()
			continue
		}
		if h.gsoType != vnetGSONone {
			e.superIn.Add(1)
		}
		e.deliver(d, payload)
	}
}

func (e *vnetEndpoint) deliver(d stack.NetworkDispatcher, payload buffer.Buffer) {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: payload})
	defer pkt.DecRef()
	eth, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	if !ok {
		return
	}
	pkt.NetworkProtocolNumber = header.Ethernet(eth).Type()
	d.DeliverNetworkPacket(pkt.NetworkProtocolNumber, pkt)
}

// vnetReadBuf is the memory one read fills: the virtio header, then the
// frame across views of vnetReadSizes.
type vnetReadBuf struct {
	hdr   [vnetHdrSize]byte
	views []*buffer.View
	iov   []unix.Iovec
}

func newVnetReadBuf() *vnetReadBuf {
	return &vnetReadBuf{
		views: make([]*buffer.View, len(vnetReadSizes)),
		iov:   make([]unix.Iovec, 1+len(vnetReadSizes)),
	}
}

// iovecs returns the iovecs for the next read, replacing the views the
// last frame took.
func (b *vnetReadBuf) iovecs() []unix.Iovec {
	b.iov[0] = rawfile.IovecFromBytes(b.hdr[:])
	for i, v := range b.views {
		if v == nil {
			v = buffer.NewViewSize(vnetReadSizes[i])
			b.views[i] = v
			b.iov[i+1] = rawfile.IovecFromBytes(v.AsSlice())
		}
	}
	return b.iov
}

// pull takes the views holding the first n frame bytes out of b.
func (b *vnetReadBuf) pull(n int) buffer.Buffer {
	var out buffer.Buffer
	for i, v := range b.views {
		if n <= 0 {
			break
		}
		if v.Size() > n {
			v.CapLength(n)
		}
		n -= v.Size()
		out.Append(v)
		b.views[i] = nil
	}
	return out
}

func (b *vnetReadBuf) release() {
	for i, v := range b.views {
		if v != nil {
			v.Release()
			b.views[i] = nil
		}
	}
}

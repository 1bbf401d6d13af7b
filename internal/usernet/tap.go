package usernet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
)

// OpenTAP creates (or attaches to) the TAP device name inside ns and
// returns its file descriptor (non-blocking, close-on-exec). With configure
// it also does what slirp4netns --configure does: brings up lo, sets the
// TAP's MTU (and MAC, when given), brings it up with the guest address
// (network+100) and a default route via the gateway; with IPv6 the guest
// configures itself from the stack's router advertisements.
//
// The work runs on a throwaway thread inside ns (netns.DoDiscard): the
// calling thread never changes namespace, and this works for a process in a
// user namespace that owns ns but may not switch back to the host's.
func OpenTAP(ns *netns.NetNS, name string, configure bool, cfg Config, mac net.HardwareAddr) (int, error) {
	if name == "" || len(name) >= unix.IFNAMSIZ {
		return -1, fmt.Errorf("TAP name %q: must be 1-%d characters", name, unix.IFNAMSIZ-1)
	}
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return -1, err
	}
	fd := -1
	err = ns.DoDiscard(func() error {
		var err error
		fd, err = openTAPHere(name, configure, cfg, mac)
		return err
	})
	return fd, err
}

// OpenTAPAt is OpenTAP in the network namespace at nsPath (a bind mount or
// /proc/PID/ns/net), for front-ends that know the namespace by its path.
func OpenTAPAt(nsPath, name string, configure bool, cfg Config, mac net.HardwareAddr) (int, error) {
	ns, err := netns.Open(nsPath)
	if err != nil {
		return -1, err
	}
	defer ns.Close()
	return OpenTAP(ns, name, configure, cfg, mac)
}

// OpenTAPHere is OpenTAP in the namespace of the calling thread, for a
// process that already runs inside the target namespace (e.g. started by
// nsenter).
func OpenTAPHere(name string, configure bool, cfg Config, mac net.HardwareAddr) (int, error) {
	if name == "" || len(name) >= unix.IFNAMSIZ {
		return -1, fmt.Errorf("TAP name %q: must be 1-%d characters", name, unix.IFNAMSIZ-1)
	}
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return -1, err
	}
	return openTAPHere(name, configure, cfg, mac)
}

func openTAPHere(name string, configure bool, cfg Config, mac net.HardwareAddr) (int, error) {
	fd, err := openVnetTAP(name)
	if errors.Is(err, unix.EACCES) {
		return -1, fmt.Errorf("open TAP %s: /dev/net/tun: %w (the device must be usable by uid %d: distributions make it mode 0666)", name, err, os.Getuid())
	}
	if err != nil {
		return -1, fmt.Errorf("open TAP %s (/dev/net/tun): %w", name, err)
	}
	if err := setOffloads(fd); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("TAP %s: %w", name, err)
	}
	if configure {
		if err := configureTAP(name, cfg, mac); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// openVnetTAP opens the TAP device name (created when missing) with a
// virtio-net header before every frame (IFF_VNET_HDR, see vnethdr.go);
// the descriptor is non-blocking and close-on-exec.
func openVnetTAP(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// tapOffloads are the offloads the TAP accepts from the guest's kernel:
// frames without checksums and TCP super-segments (TSO), which the stack
// takes as single segments. The guest's kernel then hands over up to
// 64 KiB per frame whatever the MTU, and neither side computes TCP
// checksums. UDP segmentation offload is left out: a UDP super-packet
// stands for several datagrams.
const tapOffloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6 | unix.TUN_F_TSO_ECN

// setOffloads makes the virtio headers of fd little-endian and turns on
// tapOffloads.
func setOffloads(fd int) error {
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETLE, 1); err != nil {
		return fmt.Errorf("little-endian virtio headers: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tapOffloads); err != nil {
		return fmt.Errorf("segmentation offload: %w", err)
	}
	return nil
}

// hasVnetHdr reports whether the TAP behind fd was opened with
// IFF_VNET_HDR (by openTAPHere, possibly in another process that passed
// the descriptor on).
func hasVnetHdr(fd int) (bool, error) {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return false, err
	}
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		return false, fmt.Errorf("TUNGETIFF: %w", err)
	}
	return ifr.Uint16()&unix.IFF_VNET_HDR != 0, nil
}

// configureTAP configures the TAP through a netlink socket opened in the
// calling thread's namespace.
func configureTAP(name string, cfg Config, mac net.HardwareAddr) error {
	h, err := link.NewHandle(nil)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.LoopbackUp(); err != nil {
		return err
	}
	l, err := h.Link(name)
	if err != nil {
		return err
	}
	if err := l.SetMTU(cfg.MTU); err != nil {
		return err
	}
	if len(mac) != 0 {
		if err := l.SetMAC(mac); err != nil {
			return err
		}
	}
	if err := l.SetUp(); err != nil {
		return err
	}
	if cfg.Pasta != nil {
		return configurePasta(h, l, *cfg.Pasta)
	}
	if err := l.AddAddr(netip.PrefixFrom(cfg.Guest(), cfg.CIDR.Bits())); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	gw := cfg.Gateway()
	if err := h.ReplaceRoute(link.Route{Dev: l.Index, Via: gw}); err != nil {
		return fmt.Errorf("add default route via %s: %w", gw, err)
	}
	return nil
}

// NewTAPEndpoint wraps a TAP file descriptor in a gVisor link endpoint.
// closed is closed when the descriptor stops working (e.g. the namespace
// and its TAP went away). A descriptor from openTAPHere (IFF_VNET_HDR)
// gets vnetEndpoint, with segmentation offload both ways; any other TAP
// descriptor gVisor's fdbased endpoint.
func NewTAPEndpoint(fd int, cfg Config) (ep stack.LinkEndpoint, closed <-chan struct{}, err error) {
	cfg, err = cfg.WithDefaults()
	if err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	closedFunc := func(tcpip.Error) {
		select {
		case <-done:
		default:
			close(done)
		}
	}
	// A descriptor TUNGETIFF fails on is no TAP of ours (e.g. a socket):
	// fdbased takes it, as it takes any frame-carrying descriptor.
	if vnet, _ := hasVnetHdr(fd); vnet {
		ep, err = newVnetEndpoint(fd, uint32(cfg.MTU), tcpip.LinkAddress(cfg.MAC), closedFunc)
	} else {
		ep, err = fdbased.New(&fdbased.Options{
			FDs:            []int{fd},
			MTU:            uint32(cfg.MTU),
			EthernetHeader: true,
			Address:        tcpip.LinkAddress(cfg.MAC),
			// The stack never checks the guest's checksums: a TAP
			// with checksum offload (TUN_F_CSUM) hands over frames
			// without them, and the guest's kernel is trusted.
			// gVisor computes its own outbound checksums.
			RXChecksumOffload: true,
			ClosedFunc:        closedFunc,
		})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("TAP endpoint: %w", err)
	}
	return ep, done, nil
}

// configurePasta gives the guest's link pasta's configuration: the host's
// addresses, a default route through the host's gateway of each family,
// and the host's other routes through it.
func configurePasta(h *link.Handle, l link.Link, p PastaPlan) error {
	for _, fam := range []struct {
		addr netip.Prefix
		gw   netip.Addr
	}{{p.Addr4, p.Gateway4}, {p.Addr6, p.Gateway6}} {
		if !fam.addr.IsValid() {
			continue
		}
		if err := l.AddAddr(fam.addr); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		if err := h.ReplaceRoute(link.Route{Dev: l.Index, Via: fam.gw}); err != nil {
			return fmt.Errorf("add default route via %s: %w", fam.gw, err)
		}
	}
	for _, dst := range p.Routes {
		gw := p.Gateway4
		if dst.Addr().Is6() {
			gw = p.Gateway6
		}
		if !gw.IsValid() {
			continue
		}
		if err := h.ReplaceRoute(link.Route{Dev: l.Index, Dst: dst, Via: gw}); err != nil {
			return fmt.Errorf("add route to %s via %s: %w", dst, gw, err)
		}
	}
	return nil
}

package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/overlay/lease"
)

// VXLANOverhead is what VXLAN over IPv4 adds to a frame (outer IPv4 20, UDP
// 8, VXLAN 8, inner Ethernet 14).
const VXLANOverhead = 50

// vtepMAC derives a stable, locally administered MAC for a host's VXLAN
// device from its underlay address and VNI, so a recreated device keeps its
// address and remote forwarding entries stay valid.
func vtepMAC(public netip.Addr, vni int) net.HardwareAddr {
	a := public.As4()
	return net.HardwareAddr{0x0a, byte(vni), a[0], a[1], a[2], a[3]}
}

// Device is the kernel side of the overlay on one host: the VXLAN device,
// the container bridge, and the forwarding entries on the VXLAN device,
// reached through a netlink handle bound to the host's namespace.
type Device struct {
	h       *link.Handle
	vxName  string
	brName  string
	vni     int
	port    int
	public  netip.Addr
	parent  int
	mtu     int
	vxIndex int
	brIndex int
}

// DeviceSpec says what the host's overlay devices look like.
type DeviceSpec struct {
	VXLAN, Bridge string
	VNI, Port     int
	PublicIP      netip.Addr
	// ParentIndex is the underlay link's index; MTU 0 derives the MTU from
	// it (its MTU less VXLANOverhead).
	ParentIndex int
	MTU         int
}

// EnsureDevices creates (or reuses) the VXLAN device and the bridge and
// sets them up. A VXLAN device of that name with other parameters is
// replaced.
// Equivalent to: ip link add VXLAN type vxlan id VNI local PUBLIC dev PARENT
// dstport PORT nolearning; ip link add BRIDGE type bridge; ip link set ... up
func EnsureDevices(h *link.Handle, spec DeviceSpec) (*Device, error) {
	d := &Device{h: h, vxName: spec.VXLAN, brName: spec.Bridge, vni: spec.VNI, port: spec.Port, public: spec.PublicIP, parent: spec.ParentIndex, mtu: spec.MTU}
	if d.mtu == 0 {
		p, err := h.ByIndex(spec.ParentIndex)
		if err != nil {
			return nil, fmt.Errorf("underlay link: %w", err)
		}
		d.mtu = p.Attrs().MTU - VXLANOverhead
	}
	mac := vtepMAC(spec.PublicIP, spec.VNI)
	if l, err := h.ByName(spec.VXLAN); err == nil {
		vx, ok := l.(*netlink.Vxlan)
		if !ok || vx.VxlanId != spec.VNI || vx.Port != spec.Port || !vx.SrcAddr.Equal(net.IP(spec.PublicIP.AsSlice())) ||
			vx.VtepDevIndex != spec.ParentIndex || vx.Learning || vx.Attrs().HardwareAddr.String() != mac.String() {
			if err := h.Delete(l); err != nil {
				return nil, err
			}
		} else {
			d.vxIndex = l.Attrs().Index
		}
	} else if !errors.Is(err, link.ErrNotFound) {
		return nil, err
	}
	if d.vxIndex == 0 {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = spec.VXLAN
		attrs.MTU = d.mtu
		attrs.HardwareAddr = mac
		vx := &netlink.Vxlan{LinkAttrs: attrs, VxlanId: spec.VNI, VtepDevIndex: spec.ParentIndex,
			SrcAddr: net.IP(spec.PublicIP.AsSlice()), Port: spec.Port, Learning: false}
		if err := h.LinkAdd(vx); err != nil {
			return nil, fmt.Errorf("create vxlan device %s: %w", spec.VXLAN, err)
		}
		l, err := h.ByName(spec.VXLAN)
		if err != nil {
			return nil, err
		}
		d.vxIndex = l.Attrs().Index
	}
	br, err := h.ByName(spec.Bridge)
	if errors.Is(err, link.ErrNotFound) {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = spec.Bridge
		attrs.MTU = d.mtu
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create bridge %s: %w", spec.Bridge, err)
		}
		br, err = h.ByName(spec.Bridge)
	}
	if err != nil {
		return nil, err
	}
	if _, ok := br.(*netlink.Bridge); !ok {
		return nil, fmt.Errorf("link %s exists and is a %s, not a bridge", spec.Bridge, br.Type())
	}
	d.brIndex = br.Attrs().Index
	for _, idx := range []int{d.vxIndex, d.brIndex} {
		l, err := h.ByIndex(idx)
		if err != nil {
			return nil, err
		}
		if l.Attrs().MTU != d.mtu {
			if err := h.LinkSetMTU(l, d.mtu); err != nil {
				return nil, fmt.Errorf("set mtu of %s: %w", l.Attrs().Name, err)
			}
		}
		if err := h.Up(l); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// MAC returns the VXLAN device's address (the VTEP MAC).
func (d *Device) MAC() net.HardwareAddr { return vtepMAC(d.public, d.vni) }

// MTU returns the overlay MTU.
func (d *Device) MTU() int { return d.mtu }

// SetSubnet gives the VXLAN device the subnet address as /32 and the bridge
// the gateway address, and removes addresses of an earlier subnet.
// Equivalent to: ip addr replace S.0/32 dev VXLAN; ip addr replace S.1/LEN dev BRIDGE
func (d *Device) SetSubnet(s netip.Prefix) error {
	for _, x := range []struct {
		idx  int
		addr netip.Prefix
	}{
		{d.vxIndex, netip.PrefixFrom(lease.VTEPAddr(s), 32)},
		{d.brIndex, netip.PrefixFrom(lease.Gateway(s), s.Bits())},
	} {
		l, err := d.h.ByIndex(x.idx)
		if err != nil {
			return err
		}
		addrs, err := d.h.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return fmt.Errorf("list addresses of %s: %w", l.Attrs().Name, err)
		}
		for _, a := range addrs {
			p, _ := netip.AddrFromSlice(a.IP)
			ones, _ := a.Mask.Size()
			if netip.PrefixFrom(p.Unmap(), ones) != x.addr {
				if err := d.h.AddrDel(l, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
					return fmt.Errorf("remove stale address %s from %s: %w", a.IPNet, l.Attrs().Name, err)
				}
			}
		}
		if err := d.h.AddAddr(l, x.addr); err != nil {
			return err
		}
	}
	return nil
}

// Programmed reads the forwarding state the VXLAN device holds: permanent
// FDB entries with a destination, permanent neighbour entries, and routes
// through a gateway on it.
func (d *Device) Programmed() (lease.State, error) {
	var st lease.State
	fdb, err := d.h.NeighList(d.vxIndex, unix.AF_BRIDGE)
	if err != nil {
		return st, fmt.Errorf("list fdb of %s: %w", d.vxName, err)
	}
	for _, n := range fdb {
		dst, ok := netip.AddrFromSlice(n.IP)
		if !ok || n.State&netlink.NUD_PERMANENT == 0 || len(n.HardwareAddr) != 6 {
			continue
		}
		st.FDB = append(st.FDB, lease.FDB{MAC: n.HardwareAddr.String(), Dst: dst.Unmap()})
	}
	neighs, err := d.h.NeighList(d.vxIndex, unix.AF_INET)
	if err != nil {
		return st, fmt.Errorf("list neighbours of %s: %w", d.vxName, err)
	}
	for _, n := range neighs {
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || n.State&netlink.NUD_PERMANENT == 0 || len(n.HardwareAddr) != 6 {
			continue
		}
		st.Neighs = append(st.Neighs, lease.Neigh{IP: ip.Unmap(), MAC: n.HardwareAddr.String()})
	}
	l, err := d.h.ByIndex(d.vxIndex)
	if err != nil {
		return st, err
	}
	routes, err := d.h.RouteList(l, netlink.FAMILY_V4)
	if err != nil {
		return st, fmt.Errorf("list routes of %s: %w", d.vxName, err)
	}
	for _, r := range routes {
		if r.Dst == nil || r.Gw == nil {
			continue
		}
		dst, _ := netip.AddrFromSlice(r.Dst.IP)
		ones, _ := r.Dst.Mask.Size()
		gw, _ := netip.AddrFromSlice(r.Gw)
		st.Routes = append(st.Routes, lease.Route{Dst: netip.PrefixFrom(dst.Unmap(), ones), Via: gw.Unmap()})
	}
	return st, nil
}

// Apply deletes del (routes first) and sets set (FDB entries first), so a
// route never points at a neighbour that is not there. It keeps going past
// errors and returns them joined.
func (d *Device) Apply(del, set lease.State) error {
	var errs []error
	for _, r := range del.Routes {
		err := d.h.RouteDel(&netlink.Route{LinkIndex: d.vxIndex, Dst: link.IPNet(r.Dst), Gw: net.IP(r.Via.AsSlice())})
		if err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s: %w", r.Dst, err))
		}
	}
	for _, n := range del.Neighs {
		mac, _ := net.ParseMAC(n.MAC)
		err := d.h.NeighDel(&netlink.Neigh{LinkIndex: d.vxIndex, Family: unix.AF_INET, IP: net.IP(n.IP.AsSlice()), HardwareAddr: mac})
		if err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete neighbour %s: %w", n.IP, err))
		}
	}
	for _, f := range del.FDB {
		mac, _ := net.ParseMAC(f.MAC)
		err := d.h.NeighDel(&netlink.Neigh{LinkIndex: d.vxIndex, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF,
			IP: net.IP(f.Dst.AsSlice()), HardwareAddr: mac, State: netlink.NUD_PERMANENT})
		if err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete fdb entry %s: %w", f.MAC, err))
		}
	}
	for _, f := range set.FDB {
		mac, _ := net.ParseMAC(f.MAC)
		err := d.h.NeighSet(&netlink.Neigh{LinkIndex: d.vxIndex, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF,
			IP: net.IP(f.Dst.AsSlice()), HardwareAddr: mac, State: netlink.NUD_PERMANENT})
		if err != nil {
			errs = append(errs, fmt.Errorf("set fdb entry %s dst %s: %w", f.MAC, f.Dst, err))
		}
	}
	for _, n := range set.Neighs {
		mac, _ := net.ParseMAC(n.MAC)
		err := d.h.NeighSet(&netlink.Neigh{LinkIndex: d.vxIndex, Family: unix.AF_INET, IP: net.IP(n.IP.AsSlice()),
			HardwareAddr: mac, State: netlink.NUD_PERMANENT})
		if err != nil {
			errs = append(errs, fmt.Errorf("set neighbour %s: %w", n.IP, err))
		}
	}
	for _, r := range set.Routes {
		err := d.h.RouteReplace(&netlink.Route{LinkIndex: d.vxIndex, Dst: link.IPNet(r.Dst), Gw: net.IP(r.Via.AsSlice()),
			Flags: int(netlink.FLAG_ONLINK), Scope: netlink.SCOPE_UNIVERSE})
		if err != nil {
			errs = append(errs, fmt.Errorf("set route %s via %s: %w", r.Dst, r.Via, err))
		}
	}
	return errors.Join(errs...)
}

// Reconcile brings the VXLAN device's forwarding state to want and returns
// what it changed.
func (d *Device) Reconcile(want lease.State) (del, set lease.State, err error) {
	have, err := d.Programmed()
	if err != nil {
		return del, set, err
	}
	del, set = lease.Diff(have, want)
	return del, set, d.Apply(del, set)
}

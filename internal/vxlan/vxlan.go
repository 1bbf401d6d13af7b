// Package vxlan is the kernel adapter of berth's overlay: on one host it
// finds the underlay link, creates the VXLAN device and the container
// bridge, gives them the leased subnet's addresses, and programs the
// forwarding state towards other hosts (FDB entries, neighbours and routes
// on the VXLAN device) over netlink, in a given network namespace.
package vxlan

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/overlay/lease"
	"github.com/berthnet/berth/internal/sysctl"
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
	vni     int
	public  netip.Addr
	mtu     int
	vxIndex int
	brIndex int
}

// Spec says what the host's overlay devices look like.
type Spec struct {
	VXLAN, Bridge string
	VNI, Port     int
	// Iface is the underlay link (default: the link of the IPv4 default
	// route); PublicIP the address other hosts reach it at (default: the
	// link's first IPv4 address).
	Iface    string
	PublicIP netip.Addr
	// MTU 0 derives the MTU from the underlay (its MTU less
	// VXLANOverhead).
	MTU int
}

// ErrNoAddress: the underlay link has no IPv4 address to use as the
// VXLAN source.
var ErrNoAddress = errors.New("the underlay link has no IPv4 address")

// Ensure sets the host in namespace ns (nil: the caller's) up for the
// overlay: it turns on IPv4 forwarding (containers' traffic is routed
// between bridge and VXLAN device), then creates (or reuses) the VXLAN
// device and the bridge and sets them up. A VXLAN device of that name with
// other parameters is replaced. Close releases the Device; the devices
// stay.
// Equivalent to: sysctl net.ipv4.ip_forward=1; ip link add VXLAN type vxlan
// id VNI local PUBLIC dev PARENT dstport PORT nolearning; ip link add BRIDGE
// type bridge; ip link set ... up
func Ensure(ns *netns.NetNS, spec Spec) (*Device, error) {
	h, err := link.NewHandle(ns)
	if err != nil {
		return nil, err
	}
	d, err := ensure(h, ns, spec)
	if err != nil {
		h.Close()
		return nil, err
	}
	return d, nil
}

// Open returns the existing VXLAN device name of namespace ns, to read or
// change its forwarding state.
func Open(ns *netns.NetNS, name string) (*Device, error) {
	h, err := link.NewHandle(ns)
	if err != nil {
		return nil, err
	}
	l, err := h.ByName(name)
	if err != nil {
		h.Close()
		return nil, err
	}
	return &Device{h: h, vxName: name, vxIndex: l.Attrs().Index, mtu: l.Attrs().MTU}, nil
}

// Close releases the netlink handle.
func (d *Device) Close() { d.h.Close() }

// PublicIP returns the underlay address the VXLAN device sends from.
func (d *Device) PublicIP() netip.Addr { return d.public }

// underlay finds the underlay link and its address.
func underlay(h *link.Handle, spec *Spec) (netlink.Link, error) {
	if spec.Iface == "" {
		name, err := h.DefaultRouteLink()
		if err != nil {
			return nil, fmt.Errorf("underlay: %w", err)
		}
		spec.Iface = name
	}
	parent, err := h.ByName(spec.Iface)
	if err != nil {
		return nil, fmt.Errorf("underlay: %w", err)
	}
	if spec.PublicIP.IsValid() {
		return parent, nil
	}
	addrs, err := h.AddrList(parent, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", spec.Iface, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap().Is4() {
			spec.PublicIP = ip.Unmap()
			return parent, nil
		}
	}
	return nil, fmt.Errorf("underlay %s: %w", spec.Iface, ErrNoAddress)
}

func ensure(h *link.Handle, ns *netns.NetNS, spec Spec) (*Device, error) {
	parent, err := underlay(h, &spec)
	if err != nil {
		return nil, err
	}
	if err := sysctl.Apply(ns, []sysctl.Setting{{Key: "net.ipv4.ip_forward", Value: "1"}}); err != nil {
		return nil, err
	}
	d := &Device{h: h, vxName: spec.VXLAN, vni: spec.VNI, public: spec.PublicIP, mtu: spec.MTU}
	if d.mtu == 0 {
		d.mtu = parent.Attrs().MTU - VXLANOverhead
	}
	if d.vxIndex, err = ensureVXLAN(h, spec, parent.Attrs().Index, d.mtu); err != nil {
		return nil, err
	}
	if d.brIndex, err = ensureBridge(h, spec.Bridge, d.mtu); err != nil {
		return nil, err
	}
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

// Alias marks the VXLAN devices berth creates: only a device carrying it
// is replaced when its parameters change.
const Alias = "berth-overlay"

// ErrNotOurs: a link of the VXLAN device's name exists, with other
// parameters, and is not berth's.
var ErrNotOurs = errors.New("exists and is not berth's")

// ensureVXLAN reuses the VXLAN device when its parameters match, else
// (re)creates it, and returns its index. A device of that name with other
// parameters is replaced only when it carries berth's alias.
func ensureVXLAN(h *link.Handle, spec Spec, parent, mtu int) (int, error) {
	mac := vtepMAC(spec.PublicIP, spec.VNI)
	if l, err := h.ByName(spec.VXLAN); err == nil {
		vx, ok := l.(*netlink.Vxlan)
		if ok && vx.VxlanId == spec.VNI && vx.Port == spec.Port && vx.SrcAddr.Equal(net.IP(spec.PublicIP.AsSlice())) &&
			vx.VtepDevIndex == parent && !vx.Learning && vx.Attrs().HardwareAddr.String() == mac.String() {
			if l.Attrs().Alias != Alias {
				_ = h.LinkSetAlias(l, Alias) // made before the mark, or killed before it was set
			}
			return l.Attrs().Index, nil
		}
		if l.Attrs().Alias != Alias {
			return 0, fmt.Errorf("link %s (%s) %w: remove it or name another VXLAN device", spec.VXLAN, l.Type(), ErrNotOurs)
		}
		if err := h.Delete(l); err != nil {
			return 0, err
		}
	} else if !errors.Is(err, link.ErrNotFound) {
		return 0, err
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = spec.VXLAN
	attrs.MTU = mtu
	attrs.HardwareAddr = mac
	vx := &netlink.Vxlan{LinkAttrs: attrs, VxlanId: spec.VNI, VtepDevIndex: parent,
		SrcAddr: net.IP(spec.PublicIP.AsSlice()), Port: spec.Port, Learning: false}
	if err := h.LinkAdd(vx); err != nil {
		return 0, fmt.Errorf("create vxlan device %s: %w", spec.VXLAN, err)
	}
	l, err := h.ByName(spec.VXLAN)
	if err != nil {
		return 0, err
	}
	if err := h.LinkSetAlias(l, Alias); err != nil {
		return 0, fmt.Errorf("mark vxlan device %s: %w", spec.VXLAN, err)
	}
	return l.Attrs().Index, nil
}

// ensureBridge finds or creates the container bridge and returns its index.
func ensureBridge(h *link.Handle, name string, mtu int) (int, error) {
	br, err := h.ByName(name)
	if errors.Is(err, link.ErrNotFound) {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		attrs.MTU = mtu
		attrs.HardwareAddr = link.BridgeMAC(name) // berth's mark: its ports may be swept
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !errors.Is(err, unix.EEXIST) {
			return 0, fmt.Errorf("create bridge %s: %w", name, err)
		}
		br, err = h.ByName(name)
	}
	if err != nil {
		return 0, err
	}
	if _, ok := br.(*netlink.Bridge); !ok {
		return 0, fmt.Errorf("link %s exists and is a %s, not a bridge", name, br.Type())
	}
	return br.Attrs().Index, nil
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
	fdb, err := d.permanent(unix.AF_BRIDGE)
	if err != nil {
		return st, fmt.Errorf("list fdb of %s: %w", d.vxName, err)
	}
	for _, e := range fdb {
		st.FDB = append(st.FDB, lease.FDB{MAC: e.mac, Dst: e.ip})
	}
	neighs, err := d.permanent(unix.AF_INET)
	if err != nil {
		return st, fmt.Errorf("list neighbours of %s: %w", d.vxName, err)
	}
	for _, e := range neighs {
		st.Neighs = append(st.Neighs, lease.Neigh{IP: e.ip, MAC: e.mac})
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

// entry is a permanent neighbour or FDB entry: an IP address and a MAC.
type entry struct {
	ip  netip.Addr
	mac string
}

// permanent lists the VXLAN device's permanent entries of a family
// (AF_BRIDGE: FDB entries, whose IP is the remote VTEP) with an address
// and an Ethernet MAC.
func (d *Device) permanent(family int) ([]entry, error) {
	list, err := d.h.NeighList(d.vxIndex, family)
	if err != nil {
		return nil, err
	}
	var out []entry
	for _, n := range list {
		ip, ok := netip.AddrFromSlice(n.IP)
		if ok && n.State&netlink.NUD_PERMANENT != 0 && len(n.HardwareAddr) == 6 {
			out = append(out, entry{ip: ip.Unmap(), mac: n.HardwareAddr.String()})
		}
	}
	return out, nil
}

// fdbEntry is the netlink form of an FDB entry on the VXLAN device.
// Equivalent to: bridge fdb ... MAC dev VXLAN dst DST self permanent
func (d *Device) fdbEntry(f lease.FDB) *netlink.Neigh {
	mac, _ := net.ParseMAC(f.MAC)
	return &netlink.Neigh{LinkIndex: d.vxIndex, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF,
		IP: net.IP(f.Dst.AsSlice()), HardwareAddr: mac, State: netlink.NUD_PERMANENT}
}

// neighEntry is the netlink form of a neighbour on the VXLAN device.
// Equivalent to: ip neigh ... IP lladdr MAC dev VXLAN nud permanent
func (d *Device) neighEntry(n lease.Neigh) *netlink.Neigh {
	mac, _ := net.ParseMAC(n.MAC)
	return &netlink.Neigh{LinkIndex: d.vxIndex, Family: unix.AF_INET, IP: net.IP(n.IP.AsSlice()),
		HardwareAddr: mac, State: netlink.NUD_PERMANENT}
}

// routeEntry is the netlink form of a route through the VXLAN device.
// Equivalent to: ip route ... DST via VIA dev VXLAN onlink
func (d *Device) routeEntry(r lease.Route) *netlink.Route {
	return &netlink.Route{LinkIndex: d.vxIndex, Dst: link.IPNet(r.Dst), Gw: net.IP(r.Via.AsSlice()),
		Flags: int(netlink.FLAG_ONLINK), Scope: netlink.SCOPE_UNIVERSE}
}

// Apply deletes del (routes first) and sets set (FDB entries first), so a
// route never points at a neighbour that is not there. It keeps going past
// errors and returns them joined; deleting what is gone is not one.
func (d *Device) Apply(del, set lease.State) error {
	var errs []error
	failed := func(err error, gone error, format string, args ...any) {
		if err != nil && (gone == nil || !errors.Is(err, gone)) {
			errs = append(errs, fmt.Errorf(format+": %w", append(args, err)...))
		}
	}
	for _, r := range del.Routes {
		failed(d.h.RouteDel(d.routeEntry(r)), unix.ESRCH, "delete route %s", r.Dst)
	}
	for _, n := range del.Neighs {
		failed(d.h.NeighDel(d.neighEntry(n)), unix.ENOENT, "delete neighbour %s", n.IP)
	}
	for _, f := range del.FDB {
		failed(d.h.NeighDel(d.fdbEntry(f)), unix.ENOENT, "delete fdb entry %s", f.MAC)
	}
	for _, f := range set.FDB {
		failed(d.h.NeighSet(d.fdbEntry(f)), nil, "set fdb entry %s dst %s", f.MAC, f.Dst)
	}
	for _, n := range set.Neighs {
		failed(d.h.NeighSet(d.neighEntry(n)), nil, "set neighbour %s", n.IP)
	}
	for _, r := range set.Routes {
		failed(d.h.RouteReplace(d.routeEntry(r)), nil, "set route %s via %s", r.Dst, r.Via)
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

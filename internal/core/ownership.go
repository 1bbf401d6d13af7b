package core

import (
	"bytes"
	"net"

	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/network"
)

// Ownership. A teardown deletes a link only when a mark proves berth made
// it for this container and network; a name is not proof (a network may
// name the host's uplink as its interface, a failed setup's teardown finds
// another network's eth0 in the namespace). The marks:
//
//   - a bridge: its MAC is bridgeMAC(bridge name), given when berth creates it
//     (in the same netlink request, so no crash can leave a bridge of
//     berth's without it);
//   - a veth pair: the host end's MAC is vethMAC(container, network,
//     interface), given the same way; the container end is berth's when its
//     peer is that host end;
//   - a macvlan or ipvlan link: its alias is sublinkAlias(container), set
//     right after creation (a crash in between leaves the link in the
//     container's namespace, which goes with the namespace).
//
// A veth made before berth marked its host ends is still recognised while
// berth's state records the container on that network.

// bridgeMAC derives a stable, locally administered MAC for a bridge, so the
// bridge's address does not follow its ports (netavark 1.4 lets it change).
// It is also the bridge's ownership mark, so it depends on the bridge's
// name alone: two networks may name one bridge, and either may be the
// last to leave it.
func bridgeMAC(n network.Network) net.HardwareAddr { return link.BridgeMAC(n.NetworkInterface) }

// legacyBridgeMAC is the mark of a bridge made by a berth that derived it
// from the network's ID too.
func legacyBridgeMAC(n network.Network) net.HardwareAddr {
	return link.DerivedMAC("berth-bridge:" + n.ID + ":" + n.NetworkInterface)
}

// vethMAC is the MAC of the host end of an attachment's veth.
func vethMAC(ctrID, netName, ifname string) net.HardwareAddr {
	return link.DerivedMAC("berth-veth:" + ctrID + ":" + netName + ":" + ifname)
}

// sublinkAlias marks a container's macvlan or ipvlan link.
func sublinkAlias(ctrID string) string {
	return "berth:" + network.ShortID(ctrID)
}

// ownedBridge reports whether l is the bridge berth made for n.
func ownedBridge(l link.Link, n network.Network) bool {
	return l.Kind == "bridge" && (bytes.Equal(l.MAC, bridgeMAC(n)) || bytes.Equal(l.MAC, legacyBridgeMAC(n)))
}

// OwnsBridge reports whether l is the bridge berth made for network n
// (it carries berth's mark), for front-ends that sweep its ports.
func OwnsBridge(l link.Link, n network.Network) bool { return ownedBridge(l, n) }

// hostVethMAC is the mark of at's host veth end.
func (at *attachment) hostVethMAC() net.HardwareAddr {
	return vethMAC(at.ctrID, at.net.Name, at.opts.InterfaceName)
}

// ownsHostVeth reports whether l is at's host veth end: a veth carrying
// its mark (of the host_interface_name asked for, if one was), or, for a
// veth made before marks, one of berth's name for it while berth's state
// records the container on the network (recorded).
func (at *attachment) ownsHostVeth(l link.Link, recorded bool) bool {
	if l.Kind != "veth" {
		return false
	}
	name := at.hostVethName()
	if name != "" && l.Name != name {
		return false
	}
	if bytes.Equal(l.MAC, at.hostVethMAC()) {
		return true
	}
	if name == "" {
		name = at.legacyHostVethName()
	}
	return recorded && l.Name == name
}

// ownsSublink reports whether l is at's macvlan or ipvlan link.
func (at *attachment) ownsSublink(l link.Link) bool {
	return (l.Kind == "macvlan" || l.Kind == "ipvlan") && l.Alias == sublinkAlias(at.ctrID)
}

// learnAddrs gives an attachment known by its options alone, without
// addresses (the teardown of an attach that was killed before it recorded
// them), the global addresses of its interface l, so that its published
// ports are found and removed. l must be proven the attachment's.
func (at *attachment) learnAddrs(l link.Link) {
	if len(at.addrs) > 0 {
		return
	}
	addrs, err := l.Addrs()
	if err != nil {
		return
	}
	for _, a := range addrs {
		if a.Addr().IsGlobalUnicast() {
			at.addrs = append(at.addrs, a)
		}
	}
}

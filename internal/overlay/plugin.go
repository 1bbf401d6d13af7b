package overlay

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/ipam"
	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/network"
)

// NetConf is berth-overlay's network configuration (one entry of a
// conflist's "plugins").
type NetConf struct {
	types.NetConf
	// StateDir is where the agent of this network keeps its state
	// (default /run/berth/overlay).
	StateDir string `json:"stateDir,omitempty"`
	// IsDefaultGateway adds a default route via the host's bridge; without
	// it containers get a route to the overlay range only.
	IsDefaultGateway bool `json:"isDefaultGateway,omitempty"`
	// MTU overrides the overlay MTU the agent computed (it can only shrink).
	MTU int `json:"mtu,omitempty"`
}

// parseConf decodes and checks the configuration on stdin.
func parseConf(b []byte) (*NetConf, error) {
	var c NetConf
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "decode berth-overlay configuration", err.Error())
	}
	if c.Name == "" {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "name: the network needs a name (the agent's --network)", "")
	}
	if strings.ContainsAny(c.Name, "/\x00") {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("name %q: must not contain '/'", c.Name), "")
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.MTU < 0 || (c.MTU > 0 && c.MTU < 576) {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("mtu %d: want 576 or more (0: the agent's)", c.MTU), "")
	}
	if c.IPAM.Type != "" {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "ipam: berth-overlay allocates addresses itself from the host's subnet; remove the ipam section", "")
	}
	return &c, nil
}

// hostState reads the agent's state, failing with "plugin not available"
// (CNI code 50) when the agent is not running.
func hostState(c *NetConf) (HostState, error) {
	if !AgentRunning(c.StateDir, c.Name) {
		return HostState{}, types.NewError(types.ErrPluginNotAvailable,
			fmt.Sprintf("overlay agent for network %s is not running on this host (no lock on %s)", c.Name, LockPath(c.StateDir, c.Name)),
			"start: berth-overlay agent --network "+c.Name+" --etcd-endpoints URL... --range CIDR --vni N")
	}
	st, err := ReadHostState(c.StateDir, c.Name)
	if err != nil {
		return st, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("overlay agent for network %s has no subnet yet", c.Name), err.Error())
	}
	return st, nil
}

// attachmentKey names an attachment in the address database.
func attachmentKey(containerID, ifName string) string { return containerID + "/" + ifName }

// HostVeth returns the host-side veth name of an attachment: "vo" and 11
// hex digits of a hash of network, container ID and interface name, so DEL
// and GC find it without the container's namespace.
func HostVeth(network, containerID, ifName string) string {
	sum := sha256.Sum256([]byte(network + "\x00" + containerID + "\x00" + ifName))
	return "vo" + hex.EncodeToString(sum[:])[:11]
}

func ipamNetwork(st HostState) network.Network {
	return network.Network{Name: st.Network, Driver: "bridge", Subnets: []network.Subnet{{Subnet: st.Subnet, Gateway: st.Gateway}}}
}

// containerHandle opens the container's namespace and a netlink handle in
// it; the caller closes both.
func containerHandle(path string) (*netns.NetNS, *link.Handle, error) {
	cns, err := netns.Open(path)
	if err != nil {
		return nil, nil, types.NewError(types.ErrInvalidNetNS, "open container namespace", err.Error())
	}
	ch, err := link.NewHandle(cns)
	if err != nil {
		cns.Close()
		return nil, nil, err
	}
	return cns, ch, nil
}

func cmdAdd(args *skel.CmdArgs) (err error) {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	st, err := hostState(c)
	if err != nil {
		return err
	}
	mtu := st.MTU
	if c.MTU > 0 && c.MTU < mtu {
		mtu = c.MTU
	}
	cns, ch, err := containerHandle(args.Netns)
	if err != nil {
		return err
	}
	defer cns.Close()
	defer ch.Close()
	h, err := link.NewHandle(nil)
	if err != nil {
		return err
	}
	defer h.Close()
	br, err := h.ByName(st.Bridge)
	if err != nil {
		return types.NewError(types.ErrTryAgainLater, "overlay bridge is missing (is the agent starting?)", err.Error())
	}
	alloc, err := ipam.New(IPAMPath(c.StateDir, c.Name))
	if err != nil {
		return err
	}
	key := attachmentKey(args.ContainerID, args.IfName)
	addrs, err := alloc.Allocate(key, ipamNetwork(st), nil)
	if err != nil {
		if errors.Is(err, ipam.ErrInUse) {
			return types.NewError(types.ErrInternal, fmt.Sprintf("container %s already has interface %s on network %s", args.ContainerID, args.IfName, c.Name), err.Error())
		}
		return fmt.Errorf("allocate address: %w", err)
	}
	hostName := HostVeth(c.Name, args.ContainerID, args.IfName)
	defer func() {
		if err != nil {
			if l, e := h.ByName(hostName); e == nil {
				_ = h.Delete(l)
			}
			_ = alloc.Release(key, c.Name)
		}
	}()
	addr := addrs[0]
	if _, err := h.AddVeth(link.VethSpec{Name: hostName, MTU: mtu, MasterIndex: br.Attrs().Index, PeerName: args.IfName, PeerNSFd: cns.Fd()}); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return types.NewError(types.ErrInternal, fmt.Sprintf("create veth %s: a link named %s (or %s in the container) exists", hostName, hostName, args.IfName), err.Error())
		}
		return fmt.Errorf("create veth %s: %w", hostName, err)
	}
	hl, err := h.ByName(hostName)
	if err != nil {
		return err
	}
	cl, err := ch.ByName(args.IfName)
	if err != nil {
		return err
	}
	if err := ch.AddAddr(cl, addr); err != nil {
		return err
	}
	if err := ch.Up(cl); err != nil {
		return err
	}
	gw := net.IP(st.Gateway.AsSlice())
	routes := []*types.Route{{Dst: *link.IPNet(st.Range), GW: gw}}
	if c.IsDefaultGateway {
		routes = append(routes, &types.Route{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, GW: gw})
	}
	for _, r := range routes {
		dst := r.Dst
		if err := ch.RouteReplace(&netlink.Route{LinkIndex: cl.Attrs().Index, Dst: &dst, Gw: r.GW}); err != nil {
			return fmt.Errorf("add route %s via %s in the container: %w", r.Dst.String(), r.GW, err)
		}
	}
	zero := 1
	res := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			{Name: hostName, Mac: hl.Attrs().HardwareAddr.String()},
			{Name: args.IfName, Mac: cl.Attrs().HardwareAddr.String(), Mtu: mtu, Sandbox: args.Netns},
		},
		IPs:    []*current.IPConfig{{Interface: &zero, Address: *link.IPNet(addr), Gateway: gw}},
		Routes: routes,
		DNS:    c.DNS,
	}
	return types.PrintResult(res, c.CNIVersion)
}

func cmdDel(args *skel.CmdArgs) error {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	var errs []error
	h, err := link.NewHandle(nil)
	if err != nil {
		return err
	}
	defer h.Close()
	// The host end takes the container end with it, also when the
	// container's namespace is gone already.
	if l, err := h.ByName(HostVeth(c.Name, args.ContainerID, args.IfName)); err == nil {
		errs = append(errs, h.Delete(l))
	} else if !errors.Is(err, link.ErrNotFound) {
		errs = append(errs, err)
	}
	if _, err := os.Stat(IPAMPath(c.StateDir, c.Name)); err == nil {
		alloc, err := ipam.New(IPAMPath(c.StateDir, c.Name))
		if err == nil {
			err = alloc.Release(attachmentKey(args.ContainerID, args.IfName), c.Name)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func cmdCheck(args *skel.CmdArgs) error {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	st, err := hostState(c)
	if err != nil {
		return err
	}
	if c.RawPrevResult == nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "CHECK needs prevResult", "")
	}
	if err := version.ParsePrevResult(&c.NetConf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "decode prevResult", err.Error())
	}
	prev, err := current.NewResultFromResult(c.PrevResult)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, "convert prevResult", err.Error())
	}
	alloc, err := ipam.New(IPAMPath(c.StateDir, c.Name))
	if err != nil {
		return err
	}
	held, err := alloc.Addresses(attachmentKey(args.ContainerID, args.IfName), c.Name)
	if err != nil {
		return err
	}
	if len(held) == 0 {
		return fmt.Errorf("container %s interface %s holds no address on network %s", args.ContainerID, args.IfName, c.Name)
	}
	h, err := link.NewHandle(nil)
	if err != nil {
		return err
	}
	defer h.Close()
	hostName := HostVeth(c.Name, args.ContainerID, args.IfName)
	hl, err := h.ByName(hostName)
	if err != nil {
		return fmt.Errorf("host veth: %w", err)
	}
	br, err := h.ByName(st.Bridge)
	if err != nil {
		return fmt.Errorf("overlay bridge: %w", err)
	}
	if hl.Attrs().MasterIndex != br.Attrs().Index {
		return fmt.Errorf("host veth %s is not attached to bridge %s", hostName, st.Bridge)
	}
	cns, ch, err := containerHandle(args.Netns)
	if err != nil {
		return err
	}
	defer cns.Close()
	defer ch.Close()
	cl, err := ch.ByName(args.IfName)
	if err != nil {
		return fmt.Errorf("container interface: %w", err)
	}
	addrs, err := ch.AddrList(cl, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", args.IfName, err)
	}
	for _, ipc := range prev.IPs {
		want, _ := netip.AddrFromSlice(ipc.Address.IP)
		want = want.Unmap()
		found := false
		for _, a := range addrs {
			if ip, _ := netip.AddrFromSlice(a.IP); ip.Unmap() == want {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("container interface %s lacks address %s", args.IfName, ipc.Address.String())
		}
		if len(held) > 0 && held[0] != want {
			return fmt.Errorf("address %s of %s is not the one held for it (%s)", want, args.IfName, held[0])
		}
	}
	return nil
}

func cmdStatus(args *skel.CmdArgs) error {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	_, err = hostState(c)
	return err
}

// cmdGC releases the addresses and host veths of every attachment of the
// network that is not in the valid list.
func cmdGC(args *skel.CmdArgs) error {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	var gc struct {
		Valid []types.GCAttachment `json:"cni.dev/valid-attachments"`
	}
	if err := json.Unmarshal(args.StdinData, &gc); err != nil {
		return types.NewError(types.ErrDecodingFailure, "decode cni.dev/valid-attachments", err.Error())
	}
	valid := map[string]bool{}
	for _, a := range gc.Valid {
		valid[attachmentKey(a.ContainerID, a.IfName)] = true
	}
	alloc, err := ipam.New(IPAMPath(c.StateDir, c.Name))
	if err != nil {
		return err
	}
	leases, err := alloc.Dump() // none when the database does not exist
	if err != nil {
		return err
	}
	h, err := link.NewHandle(nil)
	if err != nil {
		return err
	}
	defer h.Close()
	var errs []error
	for _, l := range leases {
		if l.Network != c.Name || valid[l.ContainerID] {
			continue
		}
		ctr, ifName, ok := strings.Cut(l.ContainerID, "/")
		if ok {
			if hl, err := h.ByName(HostVeth(c.Name, ctr, ifName)); err == nil {
				errs = append(errs, h.Delete(hl))
			}
		}
		errs = append(errs, alloc.Release(l.ContainerID, c.Name))
	}
	// Host veths on the network's bridge that belong to no valid attachment
	// (a crash between creating the veth and rolling it back).
	if st, err := ReadHostState(c.StateDir, c.Name); err == nil {
		keep := map[string]bool{}
		for _, a := range gc.Valid {
			keep[HostVeth(c.Name, a.ContainerID, a.IfName)] = true
		}
		if br, err := h.ByName(st.Bridge); err == nil {
			links, err := h.LinkList()
			if err != nil {
				errs = append(errs, fmt.Errorf("list links: %w", err))
			}
			for _, l := range links {
				if l.Attrs().MasterIndex == br.Attrs().Index && l.Type() == "veth" && strings.HasPrefix(l.Attrs().Name, "vo") && !keep[l.Attrs().Name] {
					errs = append(errs, h.Delete(l))
				}
			}
		}
	}
	return errors.Join(errs...)
}

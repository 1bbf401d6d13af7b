package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/network"
)

// DefaultBridge is berth-bridge's bridge when the configuration names none.
const DefaultBridge = "berth-cni0"

// bridgeConfig is berth-bridge's configuration. The keys are the reference
// bridge plugin's where they mean the same; isGateway and ipMasq default
// to true (berth's bridge is a NAT gateway, as in Podman).
type bridgeConfig struct {
	types.PluginConf
	Bridge           string          `json:"bridge"`
	IsGateway        *bool           `json:"isGateway"`
	IsDefaultGateway bool            `json:"isDefaultGateway"`
	IPMasq           *bool           `json:"ipMasq"`
	MTU              int             `json:"mtu"`
	HairpinMode      *bool           `json:"hairpinMode"`
	StateDir         string          `json:"stateDir"`
	Vlan             int             `json:"vlan"`
	VlanTrunk        json.RawMessage `json:"vlanTrunk"`
	MacSpoofChk      bool            `json:"macspoofchk"`

	ports         []berthnet.PortMapping
	RuntimeConfig struct {
		Mac string `json:"mac"`
		// PortMappings arrive when the configuration declares the
		// portMappings capability: berth-bridge then publishes the
		// ports itself, and the chain needs no berth-portmap (one
		// process less per ADD and DEL).
		PortMappings []portMapEntry `json:"portMappings"`
	} `json:"runtimeConfig"`
	Args struct {
		CNI struct {
			Mac string `json:"mac"`
		} `json:"cni"`
	} `json:"args"`
}

func parseBridge(stdin []byte) (*bridgeConfig, error) {
	var c bridgeConfig
	if err := decode(stdin, &c); err != nil {
		return nil, err
	}
	if err := version.ParsePrevResult(&c.PluginConf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "prevResult: "+err.Error(), "")
	}
	if c.Bridge == "" {
		c.Bridge = DefaultBridge
	}
	if !network.ValidInterfaceName(c.Bridge) {
		return nil, invalid("bridge", "%q is not a valid interface name (1-15 characters, no '/', ':' or spaces)", c.Bridge)
	}
	if c.MTU < 0 || (c.MTU > 0 && c.MTU < 68) || c.MTU > 65535 {
		return nil, invalid("mtu", "%d is not an MTU (want 68-65535)", c.MTU)
	}
	if c.Vlan != 0 {
		return nil, unsupported("vlan", c.Vlan)
	}
	if len(c.VlanTrunk) > 0 && string(c.VlanTrunk) != "null" {
		return nil, unsupported("vlanTrunk", c.VlanTrunk)
	}
	if c.MacSpoofChk {
		return nil, unsupported("macspoofchk", true)
	}
	if c.IsDefaultGateway {
		t := true
		c.IsGateway = &t
	}
	if c.RuntimeConfig.Mac == "" {
		c.RuntimeConfig.Mac = c.Args.CNI.Mac
	}
	ms, err := parsePortMappings(c.RuntimeConfig.PortMappings)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		p := berthnet.PortMapping{HostPort: m.HostPort, ContainerPort: m.ContainerPort, Protocol: m.Protocol}
		p.HostIP, _ = netip.ParseAddr(m.HostIP)
		c.ports = append(c.ports, p)
	}
	if c.RuntimeConfig.Mac != "" {
		if _, err := network.ParseMAC(c.RuntimeConfig.Mac); err != nil {
			return nil, invalid("runtimeConfig.mac", "%v", err)
		}
	}
	return &c, nil
}

func (c *bridgeConfig) stateDir() string {
	if c.StateDir != "" {
		return c.StateDir
	}
	return DefaultStateDir
}

func (c *bridgeConfig) host() (*berthnet.Host, error) {
	h, err := berthnet.New(berthnet.Config{StateDir: c.stateDir(), KeepBridges: true, Logger: debugLog, BackgroundLinkRemoval: true})
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	return h, nil
}

// network turns the configuration and the IPAM result into berth's network
// definition.
func (c *bridgeConfig) network(ipamRes *current.Result) (berthnet.Network, error) {
	gw := c.IsGateway == nil || *c.IsGateway
	n := berthnet.Network{Name: c.Name, Interface: c.Bridge, MTU: c.MTU, NoMasquerade: c.IPMasq != nil && !*c.IPMasq}
	gws := map[bool]netip.Addr{}
	if ipamRes != nil {
		for i, ip := range ipamRes.IPs {
			a, ok := netip.AddrFromSlice(ip.Address.IP)
			if !ok {
				return n, invalid(fmt.Sprintf("ipam result ips[%d]", i), "bad address %v", ip.Address.IP)
			}
			a = a.Unmap()
			bits, _ := ip.Address.Mask.Size()
			s := berthnet.Subnet{Prefix: netip.PrefixFrom(a, bits).Masked()}
			if g, ok := netip.AddrFromSlice(ip.Gateway); ok && ip.Gateway != nil {
				g = g.Unmap()
				gws[g.Is4()] = g
				if gw {
					s.Gateway = g
				}
			}
			n.Subnets = append(n.Subnets, s)
		}
	}
	def := c.IsDefaultGateway
	if ipamRes != nil {
		for i, r := range ipamRes.Routes {
			dst, ok := prefixOf(r.Dst)
			if !ok {
				return n, invalid(fmt.Sprintf("ipam result routes[%d].dst", i), "bad destination %v", r.Dst)
			}
			g, _ := netip.AddrFromSlice(r.GW)
			g = g.Unmap()
			if dst.Bits() == 0 {
				def = true
				if gw && (!g.IsValid() || g == gws[dst.Addr().Is4()]) {
					continue // the gateway's default route, added by the core
				}
			}
			if !g.IsValid() {
				g = gws[dst.Addr().Is4()]
			}
			if !g.IsValid() {
				continue // no next hop: nothing berth can route
			}
			n.Routes = append(n.Routes, berthnet.Route{Destination: dst, Gateway: g})
		}
	}
	n.NoDefaultRoute = !def
	return n, nil
}

func prefixOf(n net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	bits, total := n.Mask.Size()
	if total == 0 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, bits).Masked(), true
}

// runIPAM runs the IPAM plugin's ADD: berth-ipam in this process, any
// other by exec from CNI_PATH.
func runIPAM(ctx context.Context, env Env, c *bridgeConfig, args *skel.CmdArgs) (*current.Result, error) {
	if c.IPAM.Type == "" {
		return nil, nil
	}
	if c.IPAM.Type == IPAM {
		_, r, err := ipamAllocate(args)
		return r, err
	}
	r, err := env.Delegate.Add(ctx, c.IPAM.Type, args.StdinData)
	if err != nil {
		return nil, err
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, fmt.Sprintf("result of IPAM plugin %s: %v", c.IPAM.Type, err), "")
	}
	return res, nil
}

func releaseIPAM(ctx context.Context, env Env, c *bridgeConfig, args *skel.CmdArgs) error {
	switch c.IPAM.Type {
	case "":
		return nil
	case IPAM:
		return ipamRelease(args)
	}
	return env.Delegate.Call(ctx, "DEL", c.IPAM.Type, args.StdinData)
}

func bridgeAdd(env Env, args *skel.CmdArgs) (err error) {
	ctx := context.Background()
	c, err := parseBridge(args.StdinData)
	if err != nil {
		return err
	}
	h, err := c.host()
	if err != nil {
		return err
	}
	defer h.Close()
	ipamRes, err := runIPAM(ctx, env, c, args)
	if err != nil {
		return cniError(err)
	}
	defer func() {
		if err != nil {
			if rerr := releaseIPAM(ctx, env, c, args); rerr != nil {
				err = cniError(fmt.Errorf("%w (and releasing its addresses: %v)", err, rerr))
			}
		}
	}()
	n, err := c.network(ipamRes)
	if err != nil {
		return err
	}
	o := berthnet.AttachOptions{ContainerID: args.ContainerID, Netns: args.Netns, Interface: args.IfName, MAC: c.RuntimeConfig.Mac, Ports: c.ports}
	if ipamRes != nil {
		for _, ip := range ipamRes.IPs {
			a, _ := netip.AddrFromSlice(ip.Address.IP)
			o.Addresses = append(o.Addresses, a.Unmap())
		}
	}
	if len(o.Addresses) == 0 {
		if len(o.Ports) > 0 {
			return invalid("runtimeConfig.portMappings", "published ports need an address: give berth-bridge an ipam section")
		}
		// Without IPAM (layer 2 only) berth must not allocate either.
		n.Subnets = nil
	}
	att, err := h.Attach(ctx, n, o)
	if err != nil {
		return cniError(err)
	}
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	if prev, perr := prevResult(&c.PluginConf); perr == nil && prev != nil {
		res.Interfaces, res.IPs, res.Routes, res.DNS = prev.Interfaces, prev.IPs, prev.Routes, prev.DNS
	}
	base := len(res.Interfaces)
	res.Interfaces = append(res.Interfaces,
		&current.Interface{Name: c.Bridge, Mac: linkMAC(c.Bridge)},
		&current.Interface{Name: att.HostInterface, Mac: linkMAC(att.HostInterface)},
		&current.Interface{Name: args.IfName, Mac: att.MAC, Sandbox: args.Netns})
	if ipamRes != nil {
		for _, ip := range ipamRes.IPs {
			ip.Interface = current.Int(base + 2)
			res.IPs = append(res.IPs, ip)
		}
		res.Routes = append(res.Routes, ipamRes.Routes...)
		if res.DNS.IsEmpty() {
			res.DNS = ipamRes.DNS
		}
	}
	if c.IsDefaultGateway {
		for _, g := range att.Gateways {
			dst := net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
			if g.Is6() {
				dst = net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
			}
			if !hasRoute(res.Routes, dst) {
				res.Routes = append(res.Routes, &types.Route{Dst: dst, GW: g.AsSlice()})
			}
		}
	}
	if !c.DNS.IsEmpty() {
		res.DNS = c.DNS
	}
	return types.PrintResult(res, c.CNIVersion)
}

func hasRoute(rs []*types.Route, dst net.IPNet) bool {
	for _, r := range rs {
		if r.Dst.String() == dst.String() {
			return true
		}
	}
	return false
}

// linkMAC returns the MAC address of a link in this namespace, or "".
func linkMAC(name string) string {
	h, err := link.NewHandle(nil)
	if err != nil {
		return ""
	}
	defer h.Close()
	l, err := h.ByName(name)
	if err != nil {
		return ""
	}
	return l.Attrs().HardwareAddr.String()
}

// prevResult returns the configuration's prevResult as a current result,
// or nil.
func prevResult(c *types.PluginConf) (*current.Result, error) {
	if c.PrevResult == nil {
		return nil, nil
	}
	r, err := current.NewResultFromResult(c.PrevResult)
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "prevResult: "+err.Error(), "")
	}
	return r, nil
}

func bridgeDel(env Env, args *skel.CmdArgs) error {
	ctx := context.Background()
	c, err := parseBridge(args.StdinData)
	if err != nil {
		return err
	}
	h, err := c.host()
	if err != nil {
		return err
	}
	defer h.Close()
	var errs []error
	if err := h.Detach(ctx, args.ContainerID, args.IfName); err != nil {
		errs = append(errs, err)
	}
	if err := releaseIPAM(ctx, env, c, args); err != nil {
		errs = append(errs, err)
	}
	return cniError(errors.Join(errs...))
}

func bridgeCheck(env Env, args *skel.CmdArgs) error {
	ctx := context.Background()
	c, err := parseBridge(args.StdinData)
	if err != nil {
		return err
	}
	prev, err := prevResult(&c.PluginConf)
	if err != nil {
		return err
	}
	if prev == nil {
		return invalid("prevResult", "CHECK needs the result of ADD")
	}
	found := false
	for _, i := range prev.Interfaces {
		if i.Name == args.IfName && (i.Sandbox == "" || i.Sandbox == args.Netns) {
			found = true
		}
	}
	if !found {
		return types.NewError(ErrCheckFailed, fmt.Sprintf("berth-bridge: prevResult has no interface %s in %s", args.IfName, args.Netns), "")
	}
	h, err := c.host()
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.Check(ctx, args.ContainerID, args.IfName); err != nil {
		if errors.Is(err, berthnet.ErrNotFound) {
			return types.NewError(types.ErrUnknownContainer, err.Error(), "")
		}
		return types.NewError(ErrCheckFailed, err.Error(), "")
	}
	switch c.IPAM.Type {
	case "":
		return nil
	case IPAM:
		return ipamCheck(args)
	}
	return env.Delegate.Call(ctx, "CHECK", c.IPAM.Type, args.StdinData)
}

func bridgeStatus(env Env, args *skel.CmdArgs) error {
	ctx := context.Background()
	c, err := parseBridge(args.StdinData)
	if err != nil {
		return err
	}
	h, err := c.host()
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, err.Error(), "")
	}
	defer h.Close()
	if _, err := h.Attachments(); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("berth-bridge: state in %s: %v", c.stateDir(), err), "")
	}
	if err := firewallReady(); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, "berth-bridge: "+err.Error(), "")
	}
	switch c.IPAM.Type {
	case "":
		return nil
	case IPAM:
		return ipamStatus(args)
	}
	return env.Delegate.Call(ctx, "STATUS", c.IPAM.Type, args.StdinData)
}

// bridgeGC detaches every attachment of the network that is not in the
// valid list (links, rules, addresses), then has the IPAM plugin collect
// too.
func bridgeGC(env Env, args *skel.CmdArgs) error {
	ctx := context.Background()
	c, err := parseBridge(args.StdinData)
	if err != nil {
		return err
	}
	keep, err := validAttachments(args.StdinData)
	if err != nil {
		return err
	}
	h, err := c.host()
	if err != nil {
		return err
	}
	defer h.Close()
	var errs []error
	if _, err := h.Collect(ctx, berthnet.Network{Name: c.Name, Interface: c.Bridge}, func(ctr, ifn string) bool { return keep[ctr+"/"+ifn] }); err != nil {
		errs = append(errs, err)
	}
	switch c.IPAM.Type {
	case "":
	case IPAM:
		if _, err := ipamCollect(args); err != nil {
			errs = append(errs, err)
		}
	default:
		if err := env.Delegate.Call(ctx, "GC", c.IPAM.Type, args.StdinData); err != nil {
			errs = append(errs, err)
		}
	}
	return cniError(errors.Join(errs...))
}

package cni

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/core"
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
	if err := parseConf(stdin, &c, &c.PluginConf); err != nil {
		return nil, err
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

func (c *bridgeConfig) host(*request) (*berthnet.Host, error) {
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

// runIPAM runs the ADD of IPAM plugin typ: berth-ipam in this process,
// any other by delegation.
func runIPAM(r *request, typ string) (*current.Result, error) {
	switch typ {
	case "":
		return nil, nil
	case IPAM:
		var res *current.Result
		err := ipamVerbs.run(r, func(r *request, q *ipamRequest) (err error) {
			res, err = ipamAllocate(r, q)
			return err
		})
		return res, err
	}
	if r.env.Delegate == nil {
		return nil, types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("IPAM plugin %s: delegation needs %s", typ, DHCPBinary), "")
	}
	res, err := r.env.Delegate.Add(r.ctx, typ, r.StdinData)
	if err != nil {
		return nil, err
	}
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, fmt.Sprintf("result of IPAM plugin %s: %v", typ, err), "")
	}
	return cur, nil
}

// releaseOnError releases the addresses of an ADD that failed (*err is
// the failure).
func releaseOnError(r *request, typ string, err *error) {
	if *err == nil {
		return
	}
	if rerr := ipamCall(r, typ, "DEL"); rerr != nil {
		*err = cniError(fmt.Errorf("%w (and releasing its addresses: %v)", *err, rerr))
	}
}

// bridgeVerbs is berth-bridge.
var bridgeVerbs = attachVerbs(func(r *request) (*bridgeConfig, error) { return parseBridge(r.StdinData) }, bridgeAdd)

func bridgeAdd(r *request, c *bridgeConfig) (err error) {
	h, err := c.host(r)
	if err != nil {
		return err
	}
	defer h.Close()
	ipamRes, err := runIPAM(r, c.IPAM.Type)
	if err != nil {
		return err
	}
	defer releaseOnError(r, c.IPAM.Type, &err)
	n, err := c.network(ipamRes)
	if err != nil {
		return err
	}
	o := berthnet.AttachOptions{ContainerID: r.ContainerID, Netns: r.Netns, Interface: r.IfName, MAC: c.RuntimeConfig.Mac, Ports: c.ports}
	if ipamRes != nil {
		o.Addresses = resultAddrs(ipamRes)
	}
	if len(o.Addresses) == 0 {
		if len(o.Ports) > 0 {
			return invalid("runtimeConfig.portMappings", "published ports need an address: give berth-bridge an ipam section")
		}
		// Without IPAM (layer 2 only) berth must not allocate either.
		n.Subnets = nil
	}
	att, err := h.Attach(r.ctx, n, o)
	if err != nil {
		return err
	}
	res := chained(&c.PluginConf)
	base := len(res.Interfaces)
	res.Interfaces = append(res.Interfaces,
		&current.Interface{Name: c.Bridge, Mac: core.LinkMAC(c.Bridge)},
		&current.Interface{Name: att.HostInterface, Mac: core.LinkMAC(att.HostInterface)},
		&current.Interface{Name: r.IfName, Mac: att.MAC, Sandbox: r.Netns})
	if ipamRes != nil {
		addIPAMResult(res, ipamRes, base+2)
	}
	if c.IsDefaultGateway {
		for _, g := range att.Gateways {
			if dst := defaultDst(g); !hasRoute(res.Routes, dst) {
				res.Routes = append(res.Routes, &types.Route{Dst: dst, GW: g.AsSlice()})
			}
		}
	}
	if !c.DNS.IsEmpty() {
		res.DNS = c.DNS
	}
	return types.PrintResult(res, c.CNIVersion)
}

// resultAddrs are the addresses of an IPAM result.
func resultAddrs(res *current.Result) []netip.Addr {
	var out []netip.Addr
	for _, ip := range res.IPs {
		a, _ := netip.AddrFromSlice(ip.Address.IP)
		out = append(out, a.Unmap())
	}
	return out
}

// addIPAMResult adds the addresses (on interface idx), routes and DNS of
// an IPAM result to a plugin's result.
func addIPAMResult(res, ipamRes *current.Result, idx int) {
	for _, ip := range ipamRes.IPs {
		ip.Interface = current.Int(idx)
		res.IPs = append(res.IPs, ip)
	}
	res.Routes = append(res.Routes, ipamRes.Routes...)
	if res.DNS.IsEmpty() {
		res.DNS = ipamRes.DNS
	}
}

// defaultDst is the default route's destination in g's family.
func defaultDst(g netip.Addr) net.IPNet {
	if g.Is6() {
		return net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	}
	return net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
}

func hasRoute(rs []*types.Route, dst net.IPNet) bool {
	for _, r := range rs {
		if r.Dst.String() == dst.String() {
			return true
		}
	}
	return false
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

func (c *bridgeConfig) ipamType() string { return c.IPAM.Type }

func (c *bridgeConfig) handOver(*request) error { return nil }

func (c *bridgeConfig) collected() berthnet.Network {
	return berthnet.Network{Name: c.Name, Interface: c.Bridge}
}

func (c *bridgeConfig) published() []berthnet.PortMapping { return c.ports }

// checkInput wants ADD's result with the container's interface.
func (c *bridgeConfig) checkInput(r *request) error {
	prev, err := prevResult(&c.PluginConf)
	if err != nil {
		return err
	}
	if prev == nil {
		return invalid("prevResult", "CHECK needs the result of ADD")
	}
	for _, i := range prev.Interfaces {
		if i.Name == r.IfName && (i.Sandbox == "" || i.Sandbox == r.Netns) {
			return nil
		}
	}
	return types.NewError(ErrCheckFailed, fmt.Sprintf("berth-bridge: prevResult has no interface %s in %s", r.IfName, r.Netns), "")
}

// ready wants the state readable and the firewall programmable.
func (c *bridgeConfig) ready(r *request) error {
	h, err := c.host(r)
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
	return nil
}

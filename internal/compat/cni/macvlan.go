package cni

import (
	"net"
	"os"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/network"
)

// macvlanConfig is berth-macvlan's configuration, with the reference
// macvlan plugin's keys.
type macvlanConfig struct {
	types.PluginConf
	Master          string `json:"master"`
	Mode            string `json:"mode"`
	MTU             int    `json:"mtu"`
	StateDir        string `json:"stateDir"`
	LinkInContainer bool   `json:"linkInContainer"`
	RuntimeConfig   struct {
		Mac string `json:"mac"`
	} `json:"runtimeConfig"`
	// dhcp: the IPAM is berth-ipam in mode dhcp (the proxy leases).
	dhcp       bool
	dhcpSocket string
}

func parseMacvlan(stdin []byte) (*macvlanConfig, error) {
	var c macvlanConfig
	if err := parseConf(stdin, &c, &c.PluginConf); err != nil {
		return nil, err
	}
	if c.LinkInContainer {
		return nil, unsupported("linkInContainer", true)
	}
	switch c.Mode {
	case "", "bridge", "private", "vepa", "passthru":
	default:
		return nil, invalid("mode", "%q is not a macvlan mode (want bridge, private, vepa or passthru)", c.Mode)
	}
	if c.Master != "" && !network.ValidInterfaceName(c.Master) {
		return nil, invalid("master", "%q is not a valid interface name", c.Master)
	}
	if c.MTU < 0 || (c.MTU > 0 && c.MTU < 68) || c.MTU > 65535 {
		return nil, invalid("mtu", "%d is not an MTU (want 68-65535)", c.MTU)
	}
	if c.RuntimeConfig.Mac != "" {
		if _, err := network.ParseMAC(c.RuntimeConfig.Mac); err != nil {
			return nil, invalid("runtimeConfig.mac", "%v", err)
		}
	}
	if c.IPAM.Type == IPAM {
		ic, _, err := parseIPAM(stdin, "")
		if err != nil {
			return nil, err
		}
		c.dhcp, c.dhcpSocket = ic.IPAM.Mode == "dhcp", ic.IPAM.DaemonSocketPath
	}
	return &c, nil
}

// macvlanVerbs is berth-macvlan.
var macvlanVerbs = attachVerbs(func(r *request) (*macvlanConfig, error) { return parseMacvlan(r.StdinData) }, macvlanAdd)

// handOver hands the call to berth-cni-dhcp when the network leases by
// DHCP and this program has no proxy client; it returns only on failure.
func (c *macvlanConfig) handOver(r *request) error {
	if !c.dhcp || r.env.DHCP != nil {
		return nil
	}
	return reexecFull(Macvlan, r.StdinData)
}

// ipamType is "" for a DHCP network: the proxy leases, through the core.
func (c *macvlanConfig) ipamType() string {
	if c.dhcp {
		return ""
	}
	return c.IPAM.Type
}

func (c *macvlanConfig) checkInput(*request) error { return nil }

func (c *macvlanConfig) collected() berthnet.Network {
	return berthnet.Network{Name: c.Name, Driver: berthnet.Macvlan, Interface: c.Master}
}

// published: berth-macvlan publishes no ports.
func (c *macvlanConfig) published() []berthnet.PortMapping { return nil }

// ready wants the parent link, and the DHCP proxy's socket when the
// network leases by DHCP.
func (c *macvlanConfig) ready(*request) error {
	if c.Master != "" {
		if err := core.HostLink(c.Master); err != nil {
			return types.NewError(types.ErrPluginNotAvailable, "berth-macvlan: master "+err.Error(), "")
		}
	}
	if c.dhcp && c.dhcpSocket != "" {
		if _, err := os.Stat(c.dhcpSocket); err != nil {
			return types.NewError(types.ErrPluginNotAvailable, "berth-macvlan: DHCP proxy: "+err.Error(), "")
		}
	}
	return nil
}

func (c *macvlanConfig) host(r *request) (*berthnet.Host, error) {
	dir := c.StateDir
	if dir == "" {
		dir = DefaultStateDir
	}
	cfg := berthnet.Config{StateDir: dir, Firewall: "none", Logger: debugLog, BackgroundLinkRemoval: true}
	if c.dhcp && r.env.DHCP != nil {
		cfg.DHCP = r.env.DHCP(c.dhcpSocket)
	}
	h, err := berthnet.New(cfg)
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	return h, nil
}

// network turns the configuration and the IPAM result into berth's
// macvlan network.
func (c *macvlanConfig) network(ipamRes *current.Result) (berthnet.Network, error) {
	b := &bridgeConfig{PluginConf: c.PluginConf, MTU: c.MTU}
	n, err := b.network(ipamRes)
	if err != nil {
		return n, err
	}
	n.Driver, n.Interface, n.Mode, n.NoMasquerade = berthnet.Macvlan, c.Master, c.Mode, false
	return n, nil
}

func macvlanAdd(r *request, c *macvlanConfig) (err error) {
	if c.IPAM.Type == "" {
		return invalid("ipam", "berth-macvlan needs an IPAM plugin (e.g. {\"type\": \"berth-ipam\", ...})")
	}
	if err := c.handOver(r); err != nil {
		return err
	}
	if c.dhcp {
		return macvlanAddDHCP(r, c)
	}
	if c.Master != "" {
		if err := core.HostLink(c.Master); err != nil {
			return invalid("master", "%v", err)
		}
	}
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
	o := berthnet.AttachOptions{ContainerID: r.ContainerID, Netns: r.Netns, Interface: r.IfName, MAC: c.RuntimeConfig.Mac, Addresses: resultAddrs(ipamRes)}
	att, err := h.Attach(r.ctx, n, o)
	if err != nil {
		return err
	}
	res := chained(&c.PluginConf)
	idx := len(res.Interfaces)
	res.Interfaces = append(res.Interfaces, &current.Interface{Name: r.IfName, Mac: att.MAC, Sandbox: r.Netns})
	addIPAMResult(res, ipamRes, idx)
	if !c.DNS.IsEmpty() {
		res.DNS = c.DNS
	}
	return types.PrintResult(res, c.CNIVersion)
}

// macvlanAddDHCP attaches with the address leased through the DHCP proxy,
// which keeps renewing it; the result carries the lease.
func macvlanAddDHCP(r *request, c *macvlanConfig) error {
	h, err := c.host(r)
	if err != nil {
		return err
	}
	defer h.Close()
	n := berthnet.Network{Name: c.Name, Driver: berthnet.Macvlan, Interface: c.Master, Mode: c.Mode, MTU: c.MTU, DHCP: true}
	att, err := h.Attach(r.ctx, n, berthnet.AttachOptions{ContainerID: r.ContainerID, Netns: r.Netns, Interface: r.IfName, MAC: c.RuntimeConfig.Mac})
	if err != nil {
		return err
	}
	res := chained(&c.PluginConf)
	idx := len(res.Interfaces)
	res.Interfaces = append(res.Interfaces, &current.Interface{Name: r.IfName, Mac: att.MAC, Sandbox: r.Netns})
	for _, a := range att.Addresses {
		ipc := &current.IPConfig{Interface: current.Int(idx), Address: net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}}
		for _, g := range att.Gateways {
			if g.Is4() == a.Addr().Is4() {
				ipc.Gateway = g.AsSlice()
				res.Routes = append(res.Routes, &types.Route{Dst: defaultDst(g), GW: g.AsSlice()})
				break
			}
		}
		res.IPs = append(res.IPs, ipc)
	}
	for _, d := range att.DNS {
		res.DNS.Nameservers = append(res.DNS.Nameservers, d.String())
	}
	if len(att.SearchDomains) > 0 {
		res.DNS.Domain = att.SearchDomains[0]
		res.DNS.Search = att.SearchDomains
	}
	if !c.DNS.IsEmpty() {
		res.DNS = c.DNS
	}
	return types.PrintResult(res, c.CNIVersion)
}

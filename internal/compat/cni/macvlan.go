package cni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/link"
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
	if err := decode(stdin, &c); err != nil {
		return nil, err
	}
	if err := version.ParsePrevResult(&c.PluginConf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "prevResult: "+err.Error(), "")
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

// needDHCP hands the call to berth-cni-dhcp when the network leases by
// DHCP and this binary has no proxy client; it returns only on failure.
func (c *macvlanConfig) needDHCP(env Env, args *skel.CmdArgs) error {
	if !c.dhcp || env.DHCP != nil {
		return nil
	}
	return reexecFull(Macvlan, args.StdinData)
}

// bridgeView lets the IPAM helpers shared with berth-bridge run for a
// macvlan configuration.
func (c *macvlanConfig) bridgeView() *bridgeConfig {
	return &bridgeConfig{PluginConf: c.PluginConf}
}

func (c *macvlanConfig) host(env Env) (*berthnet.Host, error) {
	dir := c.StateDir
	if dir == "" {
		dir = DefaultStateDir
	}
	cfg := berthnet.Config{StateDir: dir, Firewall: "none", Logger: debugLog, BackgroundLinkRemoval: true}
	if c.dhcp && env.DHCP != nil {
		cfg.DHCP = env.DHCP(c.dhcpSocket)
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

func macvlanAdd(env Env, args *skel.CmdArgs) (err error) {
	ctx := context.Background()
	c, err := parseMacvlan(args.StdinData)
	if err != nil {
		return err
	}
	if c.IPAM.Type == "" {
		return invalid("ipam", "berth-macvlan needs an IPAM plugin (e.g. {\"type\": \"berth-ipam\", ...})")
	}
	if err := c.needDHCP(env, args); err != nil {
		return err
	}
	if c.dhcp {
		return macvlanAddDHCP(ctx, env, c, args)
	}
	if c.Master != "" {
		if _, err := hostLink(c.Master); err != nil {
			return invalid("master", "%v", err)
		}
	}
	h, err := c.host(env)
	if err != nil {
		return err
	}
	defer h.Close()
	bv := c.bridgeView()
	ipamRes, err := runIPAM(ctx, env, bv, args)
	if err != nil {
		return cniError(err)
	}
	defer func() {
		if err != nil {
			if rerr := releaseIPAM(ctx, env, bv, args); rerr != nil {
				err = cniError(fmt.Errorf("%w (and releasing its addresses: %v)", err, rerr))
			}
		}
	}()
	n, err := c.network(ipamRes)
	if err != nil {
		return err
	}
	o := berthnet.AttachOptions{ContainerID: args.ContainerID, Netns: args.Netns, Interface: args.IfName, MAC: c.RuntimeConfig.Mac}
	for _, ip := range ipamRes.IPs {
		a, _ := netip.AddrFromSlice(ip.Address.IP)
		o.Addresses = append(o.Addresses, a.Unmap())
	}
	att, err := h.Attach(ctx, n, o)
	if err != nil {
		return cniError(err)
	}
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	if prev, perr := prevResult(&c.PluginConf); perr == nil && prev != nil {
		res.Interfaces, res.IPs, res.Routes, res.DNS = prev.Interfaces, prev.IPs, prev.Routes, prev.DNS
	}
	idx := len(res.Interfaces)
	res.Interfaces = append(res.Interfaces, &current.Interface{Name: args.IfName, Mac: att.MAC, Sandbox: args.Netns})
	for _, ip := range ipamRes.IPs {
		ip.Interface = current.Int(idx)
		res.IPs = append(res.IPs, ip)
	}
	res.Routes = append(res.Routes, ipamRes.Routes...)
	if !c.DNS.IsEmpty() {
		res.DNS = c.DNS
	} else if res.DNS.IsEmpty() {
		res.DNS = ipamRes.DNS
	}
	return types.PrintResult(res, c.CNIVersion)
}

// hostLink checks that a link exists in the plugin's namespace.
func hostLink(name string) (string, error) {
	h, err := link.NewHandle(nil)
	if err != nil {
		return "", err
	}
	defer h.Close()
	l, err := h.ByName(name)
	if err != nil {
		return "", fmt.Errorf("link %s: %w", name, err)
	}
	return l.Attrs().Name, nil
}

func macvlanDel(env Env, args *skel.CmdArgs) error {
	ctx := context.Background()
	c, err := parseMacvlan(args.StdinData)
	if err != nil {
		return err
	}
	if err := c.needDHCP(env, args); err != nil {
		return err
	}
	h, err := c.host(env)
	if err != nil {
		return err
	}
	defer h.Close()
	var errs []error
	if err := h.Detach(ctx, args.ContainerID, args.IfName); err != nil {
		errs = append(errs, err)
	}
	if !c.dhcp {
		if err := releaseIPAM(ctx, env, c.bridgeView(), args); err != nil {
			errs = append(errs, err)
		}
	}
	return cniError(errors.Join(errs...))
}

func macvlanCheck(env Env, args *skel.CmdArgs) error {
	ctx := context.Background()
	c, err := parseMacvlan(args.StdinData)
	if err != nil {
		return err
	}
	h, err := c.host(env)
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
	switch {
	case c.dhcp, c.IPAM.Type == "":
		return nil
	case c.IPAM.Type == IPAM:
		return ipamCheck(args)
	}
	return env.Delegate.Call(ctx, "CHECK", c.IPAM.Type, args.StdinData)
}

func macvlanStatus(env Env, args *skel.CmdArgs) error {
	ctx := context.Background()
	c, err := parseMacvlan(args.StdinData)
	if err != nil {
		return err
	}
	if c.Master != "" {
		if _, err := hostLink(c.Master); err != nil {
			return types.NewError(types.ErrPluginNotAvailable, "berth-macvlan: master "+err.Error(), "")
		}
	}
	switch {
	case c.dhcp:
		if c.dhcpSocket != "" {
			if _, err := os.Stat(c.dhcpSocket); err != nil {
				return types.NewError(types.ErrPluginNotAvailable, "berth-macvlan: DHCP proxy: "+err.Error(), "")
			}
		}
		return nil
	case c.IPAM.Type == "":
		return nil
	case c.IPAM.Type == IPAM:
		return ipamStatus(args)
	}
	return env.Delegate.Call(ctx, "STATUS", c.IPAM.Type, args.StdinData)
}

func macvlanGC(env Env, args *skel.CmdArgs) error {
	ctx := context.Background()
	c, err := parseMacvlan(args.StdinData)
	if err != nil {
		return err
	}
	keep, err := validAttachments(args.StdinData)
	if err != nil {
		return err
	}
	if err := c.needDHCP(env, args); err != nil {
		return err
	}
	h, err := c.host(env)
	if err != nil {
		return err
	}
	defer h.Close()
	var errs []error
	if _, err := h.Collect(ctx, berthnet.Network{Name: c.Name, Driver: berthnet.Macvlan, Interface: c.Master}, func(ctr, ifn string) bool { return keep[ctr+"/"+ifn] }); err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.dhcp, c.IPAM.Type == "":
	case c.IPAM.Type == IPAM:
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

// macvlanAddDHCP attaches with the address leased through the DHCP proxy,
// which keeps renewing it; the result carries the lease.
func macvlanAddDHCP(ctx context.Context, env Env, c *macvlanConfig, args *skel.CmdArgs) error {
	h, err := c.host(env)
	if err != nil {
		return err
	}
	defer h.Close()
	n := berthnet.Network{Name: c.Name, Driver: berthnet.Macvlan, Interface: c.Master, Mode: c.Mode, MTU: c.MTU, DHCP: true}
	att, err := h.Attach(ctx, n, berthnet.AttachOptions{ContainerID: args.ContainerID, Netns: args.Netns, Interface: args.IfName, MAC: c.RuntimeConfig.Mac})
	if err != nil {
		return cniError(err)
	}
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	if prev, perr := prevResult(&c.PluginConf); perr == nil && prev != nil {
		res.Interfaces, res.IPs, res.Routes, res.DNS = prev.Interfaces, prev.IPs, prev.Routes, prev.DNS
	}
	idx := len(res.Interfaces)
	res.Interfaces = append(res.Interfaces, &current.Interface{Name: args.IfName, Mac: att.MAC, Sandbox: args.Netns})
	for _, a := range att.Addresses {
		ipc := &current.IPConfig{Interface: current.Int(idx), Address: net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}}
		for _, g := range att.Gateways {
			if g.Is4() == a.Addr().Is4() {
				ipc.Gateway = g.AsSlice()
				dst := net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
				if g.Is6() {
					dst = net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
				}
				res.Routes = append(res.Routes, &types.Route{Dst: dst, GW: g.AsSlice()})
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

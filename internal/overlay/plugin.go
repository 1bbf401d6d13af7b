package overlay

import (
	"context"
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

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/overlay/agent"
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
		c.StateDir = agent.DefaultStateDir
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
func hostState(c *NetConf) (agent.HostState, error) {
	if !agent.Running(c.StateDir, c.Name) {
		return agent.HostState{}, types.NewError(types.ErrPluginNotAvailable,
			fmt.Sprintf("overlay agent for network %s is not running on this host (no lock on %s)", c.Name, agent.LockPath(c.StateDir, c.Name)),
			"start: berth-overlay agent --network "+c.Name+" --etcd-endpoints URL... --range CIDR --vni N")
	}
	st, err := agent.ReadHostState(c.StateDir, c.Name)
	if err != nil {
		return st, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("overlay agent for network %s has no subnet yet", c.Name), err.Error())
	}
	return st, nil
}

// attachHost opens the attach service on the network's attachment
// directory. The agent owns the bridge, so no firewall driver is needed.
func attachHost(c *NetConf) (*berthnet.Host, error) {
	h, err := berthnet.New(berthnet.Config{StateDir: agent.AttachDir(c.StateDir, c.Name), Firewall: "none"})
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	return h, nil
}

// bridgeNetwork describes the host's share of the overlay to the attach
// service: a bridge the agent created and configured (mode unmanaged: it
// only gains container ports), the host's leased subnet with the bridge's
// address as gateway, a route to the whole overlay range, and a default
// route only when asked for.
func bridgeNetwork(c *NetConf, st agent.HostState) berthnet.Network {
	mtu := st.MTU
	if c.MTU > 0 && c.MTU < mtu {
		mtu = c.MTU
	}
	return berthnet.Network{
		Name: c.Name, Driver: berthnet.Bridge, Interface: st.Bridge, Mode: "unmanaged", MTU: mtu,
		Subnets:        []berthnet.Subnet{{Prefix: st.Subnet, Gateway: st.Gateway}},
		Routes:         []berthnet.Route{{Destination: st.Range, Gateway: st.Gateway}},
		NoDefaultRoute: !c.IsDefaultGateway,
	}
}

// cniError turns an error of the attach service into a CNI error; CNI
// errors pass unchanged.
func cniError(err error) error {
	var e *types.Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	switch {
	case errors.Is(err, berthnet.ErrInvalid):
		return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	case errors.Is(err, os.ErrNotExist):
		return types.NewError(types.ErrInvalidNetNS, err.Error(), "")
	}
	return types.NewError(types.ErrInternal, err.Error(), "")
}

func cmdAdd(args *skel.CmdArgs) error {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	st, err := hostState(c)
	if err != nil {
		return err
	}
	h, err := attachHost(c)
	if err != nil {
		return err
	}
	defer h.Close()
	n := bridgeNetwork(c, st)
	att, err := h.Attach(context.Background(), n, berthnet.AttachOptions{ContainerID: args.ContainerID, Netns: args.Netns, Interface: args.IfName})
	if err != nil {
		return cniError(err)
	}
	return types.PrintResult(result(c, n, args, att), c.CNIVersion)
}

// result is the CNI result of an attachment.
func result(c *NetConf, n berthnet.Network, args *skel.CmdArgs, att berthnet.Attachment) *current.Result {
	gw := net.IP(n.Subnets[0].Gateway.AsSlice())
	routes := []*types.Route{{Dst: ipNet(n.Routes[0].Destination), GW: gw}}
	if c.IsDefaultGateway {
		routes = append(routes, &types.Route{Dst: ipNet(netip.PrefixFrom(netip.IPv4Unspecified(), 0)), GW: gw})
	}
	res := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			{Name: att.HostInterface},
			{Name: args.IfName, Mac: att.MAC, Mtu: n.MTU, Sandbox: args.Netns},
		},
		Routes: routes,
		DNS:    c.DNS,
	}
	for _, a := range att.Addresses {
		res.IPs = append(res.IPs, &current.IPConfig{Interface: current.Int(1), Address: ipNet(a), Gateway: gw})
	}
	return res
}

func ipNet(p netip.Prefix) net.IPNet {
	return net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func cmdDel(args *skel.CmdArgs) error {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	h, err := attachHost(c)
	if err != nil {
		return err
	}
	defer h.Close()
	// The host end takes the container end with it, also when the
	// container's namespace is gone already.
	return cniError(h.Detach(context.Background(), args.ContainerID, args.IfName))
}

func cmdCheck(args *skel.CmdArgs) error {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	if _, err := hostState(c); err != nil {
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
	h, err := attachHost(c)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.Check(context.Background(), args.ContainerID, args.IfName); err != nil {
		if errors.Is(err, berthnet.ErrNotFound) {
			return types.NewError(types.ErrUnknownContainer, err.Error(), "")
		}
		return cniError(err)
	}
	att, err := attachment(h, c.Name, args.ContainerID, args.IfName)
	if err != nil {
		return cniError(err)
	}
	return samePrefixes(prev.IPs, att.Addresses)
}

// attachment returns the attachment of a container interface.
func attachment(h *berthnet.Host, network, ctrID, ifName string) (berthnet.Attachment, error) {
	atts, err := h.Attachments()
	if err != nil {
		return berthnet.Attachment{}, err
	}
	for _, a := range atts {
		if a.Network == network && a.ContainerID == ctrID && a.Interface == ifName {
			return a, nil
		}
	}
	return berthnet.Attachment{}, fmt.Errorf("container %s interface %s: %w", ctrID, ifName, berthnet.ErrNotFound)
}

// samePrefixes checks that every address of a previous result is one the
// attachment holds.
func samePrefixes(prev []*current.IPConfig, held []netip.Prefix) error {
	for _, ipc := range prev {
		want, _ := netip.AddrFromSlice(ipc.Address.IP)
		found := false
		for _, p := range held {
			found = found || p.Addr() == want.Unmap()
		}
		if !found {
			return fmt.Errorf("address %s of prevResult is not the one held for the attachment (%v)", ipc.Address.String(), held)
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

// cmdGC detaches every attachment of the network that is not in the valid
// list, releasing its address, and removes stray host veths on the bridge.
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
		valid[a.ContainerID+"/"+a.IfName] = true
	}
	h, err := attachHost(c)
	if err != nil {
		return err
	}
	defer h.Close()
	n := berthnet.Network{Name: c.Name, Driver: berthnet.Bridge, Mode: "unmanaged"}
	if st, err := agent.ReadHostState(c.StateDir, c.Name); err == nil {
		n.Interface = st.Bridge
	}
	_, err = h.Collect(context.Background(), n, func(ctr, ifn string) bool { return valid[ctr+"/"+ifn] })
	return cniError(err)
}

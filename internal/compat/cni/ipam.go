package cni

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/berthnet/berth/internal/ipam"
	"github.com/berthnet/berth/internal/network"
)

// ipamConfig is berth-ipam's configuration: host-local's keys (ranges,
// routes, dataDir; the older single subnet/rangeStart/rangeEnd/gateway
// form too).
type ipamConfig struct {
	types.PluginConf
	IPAM struct {
		Type       string         `json:"type"`
		Ranges     [][]rangeConf  `json:"ranges"`
		Subnet     string         `json:"subnet"`
		RangeStart string         `json:"rangeStart"`
		RangeEnd   string         `json:"rangeEnd"`
		Gateway    string         `json:"gateway"`
		Routes     []*types.Route `json:"routes"`
		DataDir    string         `json:"dataDir"`
		// Mode "dhcp": addresses from the LAN's DHCP server through berth's
		// DHCP proxy (berth-macvlan only), at DaemonSocketPath.
		Mode             string `json:"mode"`
		DaemonSocketPath string `json:"daemonSocketPath"`
		ResolvConf       string `json:"resolvConf"`
	} `json:"ipam"`
	RuntimeConfig struct {
		IPs []string `json:"ips"`
	} `json:"runtimeConfig"`
	Args struct {
		CNI struct {
			IPs []string `json:"ips"`
		} `json:"cni"`
	} `json:"args"`
}

type rangeConf struct {
	Subnet     string `json:"subnet"`
	RangeStart string `json:"rangeStart"`
	RangeEnd   string `json:"rangeEnd"`
	Gateway    string `json:"gateway"`
}

// ipamPlan is a parsed berth-ipam configuration.
type ipamPlan struct {
	net     network.Network // Name and one Subnet per range set
	routes  []*types.Route
	dataDir string
	static  []netip.Addr
}

// parseIPAM validates a berth-ipam configuration; cniArgs is CNI_ARGS.
func parseIPAM(stdin []byte, cniArgs string) (*ipamConfig, *ipamPlan, error) {
	var c ipamConfig
	if err := decode(stdin, &c); err != nil {
		return nil, nil, err
	}
	p := &ipamPlan{net: network.Network{Name: c.Name, ID: c.Name, Driver: network.DriverBridge}, routes: c.IPAM.Routes, dataDir: c.IPAM.DataDir}
	if p.dataDir == "" {
		p.dataDir = DefaultStateDir
	}
	if c.IPAM.ResolvConf != "" {
		return nil, nil, unsupported("ipam.resolvConf", c.IPAM.ResolvConf)
	}
	switch c.IPAM.Mode {
	case "", "static":
	case "dhcp":
		if c.Type != Macvlan {
			return nil, nil, unsupported("ipam.mode", c.IPAM.Mode+" (berth-ipam leases by DHCP only under berth-macvlan)")
		}
		return &c, p, nil
	default:
		return nil, nil, invalid("ipam.mode", "%q is not an IPAM mode (want static or dhcp)", c.IPAM.Mode)
	}
	subnets, err := parseRangeSets(&c)
	if err != nil {
		return nil, nil, err
	}
	p.net.Subnets = subnets
	if p.static, err = parseStaticIPs(&c, cniArgs, &p.net); err != nil {
		return nil, nil, err
	}
	return &c, p, nil
}

// parseRangeSets turns the range sets (with the top-level subnet, if
// given, first) into subnets: one range per set, one set per family.
func parseRangeSets(c *ipamConfig) ([]network.Subnet, error) {
	sets := c.IPAM.Ranges
	if c.IPAM.Subnet != "" {
		sets = append([][]rangeConf{{{Subnet: c.IPAM.Subnet, RangeStart: c.IPAM.RangeStart, RangeEnd: c.IPAM.RangeEnd, Gateway: c.IPAM.Gateway}}}, sets...)
	}
	if len(sets) == 0 {
		return nil, invalid("ipam.ranges", "no ranges given (want e.g. [[{\"subnet\":\"10.22.0.0/24\"}]])")
	}
	fam := map[bool]bool{}
	var subnets []network.Subnet
	for i, set := range sets {
		f := fmt.Sprintf("ipam.ranges[%d]", i)
		if len(set) != 1 {
			if len(set) == 0 {
				return nil, invalid(f, "empty range set")
			}
			return nil, unsupported(f, set)
		}
		r := set[0]
		sub, err := netip.ParsePrefix(r.Subnet)
		if err != nil {
			return nil, invalid(f+"[0].subnet", "%q is not a CIDR subnet", r.Subnet)
		}
		sub = sub.Masked()
		if sub.Bits() > sub.Addr().BitLen()-2 {
			// As host-local: no room for a gateway and a container.
			return nil, invalid(f+"[0].subnet", "%s is too small to allocate from (at most /%d)", sub, sub.Addr().BitLen()-2)
		}
		if fam[sub.Addr().Is4()] {
			return nil, invalid(f, "a second range set of the same address family (one per family)")
		}
		fam[sub.Addr().Is4()] = true
		s, err := parseRange(f, r, sub)
		if err != nil {
			return nil, err
		}
		subnets = append(subnets, s)
	}
	return subnets, nil
}

// parseRange reads a range's gateway (default: the subnet's first
// address) and lease range; f names the range set in errors.
func parseRange(f string, r rangeConf, sub netip.Prefix) (network.Subnet, error) {
	s := network.Subnet{Subnet: sub}
	if r.Gateway != "" {
		var err error
		if s.Gateway, err = netip.ParseAddr(r.Gateway); err != nil || !sub.Contains(s.Gateway) {
			return s, invalid(f+"[0].gateway", "%q is not an address in %s", r.Gateway, sub)
		}
	} else {
		s.Gateway = sub.Addr().Next()
	}
	var lr network.LeaseRange
	for _, x := range []struct {
		name, v string
		dst     *netip.Addr
	}{{"rangeStart", r.RangeStart, &lr.StartIP}, {"rangeEnd", r.RangeEnd, &lr.EndIP}} {
		if x.v == "" {
			continue
		}
		a, err := netip.ParseAddr(x.v)
		if err != nil || !sub.Contains(a) {
			return s, invalid(f+"[0]."+x.name, "%q is not an address in %s", x.v, sub)
		}
		*x.dst = a
	}
	if lr.StartIP.IsValid() || lr.EndIP.IsValid() {
		s.LeaseRange = &lr
	}
	return s, nil
}

// parseStaticIPs collects the addresses asked for in runtimeConfig.ips,
// args.cni.ips and CNI_ARGS' IP=, each of which must be in a subnet of n.
func parseStaticIPs(c *ipamConfig, cniArgs string, n *network.Network) ([]netip.Addr, error) {
	reqs := append(append([]string(nil), c.RuntimeConfig.IPs...), c.Args.CNI.IPs...)
	for _, kv := range strings.Split(cniArgs, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == "IP" {
			reqs = append(reqs, strings.Split(v, ",")...)
		}
	}
	var static []netip.Addr
	for _, s := range reqs {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if pr, err := netip.ParsePrefix(s); err == nil {
			s = pr.Addr().String()
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, invalid("runtimeConfig.ips", "%q is not an IP address", s)
		}
		if _, ok := n.SubnetFor(a); !ok {
			return nil, invalid("runtimeConfig.ips", "%s is not in any range of network %s", a, c.Name)
		}
		static = append(static, a)
	}
	return static, nil
}

func (p *ipamPlan) allocator() (*ipam.Allocator, error) {
	if err := os.MkdirAll(p.dataDir, 0o755); err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("create ipam dataDir: %v", err), "")
	}
	return ipam.New(filepath.Join(p.dataDir, "ipam.db"))
}

// result builds the IPAM result for addresses held.
func (p *ipamPlan) result(cniVersion string, addrs []netip.Addr) *current.Result {
	r := &current.Result{CNIVersion: current.ImplementedSpecVersion, Routes: p.routes}
	for _, a := range addrs {
		s, ok := p.net.SubnetFor(a)
		if !ok {
			continue
		}
		ipc := &current.IPConfig{Address: net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(s.Subnet.Bits(), a.BitLen())}}
		if s.Gateway.IsValid() {
			ipc.Gateway = s.Gateway.AsSlice()
		}
		r.IPs = append(r.IPs, ipc)
	}
	return r
}

// ipamRequest is berth-ipam's configuration with its plan.
type ipamRequest struct {
	c *ipamConfig
	p *ipamPlan
}

// ipamVerbs is berth-ipam.
var ipamVerbs = verbs[*ipamRequest]{
	parse: func(r *request) (*ipamRequest, error) {
		c, p, err := parseIPAM(r.StdinData, r.Args)
		if err != nil {
			return nil, err
		}
		return &ipamRequest{c, p}, nil
	},
	add: ipamAdd, del: ipamDel, check: ipamCheck, status: ipamStatus, gc: ipamGC,
}

// owner is the attachment's key in the address store.
func (r *request) owner() string { return r.ContainerID + "/" + r.IfName }

// ipamAllocate is berth-ipam's ADD: it returns the addresses of the
// attachment, allocating them unless it already holds some (a repeated
// ADD gets the same answer).
func ipamAllocate(r *request, q *ipamRequest) (*current.Result, error) {
	al, err := q.p.allocator()
	if err != nil {
		return nil, err
	}
	have, err := al.Addresses(r.owner(), q.p.net.Name)
	if err != nil {
		return nil, err
	}
	if len(have) == 0 {
		ps, err := al.Allocate(r.owner(), q.p.net, q.p.static)
		if err != nil {
			if errors.Is(err, network.ErrInvalid) {
				return nil, types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
			}
			return nil, types.NewError(ErrAddressInUse, err.Error(), "")
		}
		for _, x := range ps {
			have = append(have, x.Addr())
		}
	}
	return q.p.result(q.c.CNIVersion, have), nil
}

func ipamAdd(r *request, q *ipamRequest) error {
	res, err := ipamAllocate(r, q)
	if err != nil {
		return err
	}
	return types.PrintResult(res, q.c.CNIVersion)
}

// ipamDel releases the attachment's addresses: idempotent.
func ipamDel(r *request, q *ipamRequest) error {
	al, err := q.p.allocator()
	if err != nil {
		return err
	}
	return al.Release(r.owner(), q.p.net.Name)
}

func ipamCheck(r *request, q *ipamRequest) error {
	al, err := q.p.allocator()
	if err != nil {
		return err
	}
	have, err := al.Addresses(r.owner(), q.p.net.Name)
	if err != nil {
		return err
	}
	if len(have) == 0 {
		return types.NewError(ErrCheckFailed, fmt.Sprintf("berth-ipam: no addresses are reserved for %s on network %s", r.owner(), q.p.net.Name), "")
	}
	return nil
}

// ipamStatus reports whether an ADD could be served: the store opens and
// every range has a free address.
func ipamStatus(_ *request, q *ipamRequest) error {
	p := q.p
	al, err := p.allocator()
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, err.Error(), "")
	}
	leases, err := al.Dump()
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("berth-ipam: read %s: %v", al.Path(), err), "")
	}
	for _, s := range p.net.Subnets {
		used := 0
		for _, l := range leases {
			if l.Network == p.net.Name && s.Subnet.Contains(l.IP) {
				used++
			}
		}
		if used >= ipam.Capacity(s) {
			return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("berth-ipam: range %s of network %s is full (%d addresses in use)", s.Subnet, p.net.Name, used), "")
		}
	}
	return nil
}

// ipamGC releases the addresses of attachments not in the GC keep-list.
func ipamGC(r *request, q *ipamRequest) error {
	keep, err := validAttachments(r.StdinData)
	if err != nil {
		return err
	}
	al, err := q.p.allocator()
	if err != nil {
		return err
	}
	leases, err := al.Dump()
	if err != nil {
		return err
	}
	done := map[string]bool{}
	var errs []error
	for _, l := range leases {
		if l.Network != q.p.net.Name || keep[l.ContainerID] || done[l.ContainerID] {
			continue
		}
		done[l.ContainerID] = true
		if err := al.Release(l.ContainerID, q.p.net.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("berth-ipam gc: %v", errs)
	}
	return nil
}

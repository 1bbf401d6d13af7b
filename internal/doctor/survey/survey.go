// Package survey gathers the doctor's input: berth's records of a state
// directory (networks with containers, their addresses and published
// ports, the DNS server), what berth's firewall driver finds of its own
// rules, and the kernel's state read by package probe in the namespace
// that holds the bridges.
package survey

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/doctor"
	"github.com/berthnet/berth/internal/doctor/probe"
	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/firewall/nftables"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/network"
)

// Config says where berth's state and host namespace are.
type Config struct {
	// StateDir is the state directory of the attach service (the CLI's
	// network run directory, netavark's --config).
	StateDir string
	// HostNetns is the namespace of the bridges and firewall ("": the
	// caller's).
	HostNetns string
	// Firewall is berth's firewall driver for that namespace (nil:
	// nftables).
	Firewall firewall.Driver
	// DNSPort is the DNS server's port (0: 53).
	DNSPort uint16
}

// Survey reads berth's records and the host into the doctor's input.
// Errors reading records are returned with what could be read.
func Survey(cfg Config) (doctor.Input, error) {
	var ns *netns.NetNS
	if cfg.HostNetns != "" {
		var err error
		if ns, err = netns.Open(cfg.HostNetns); err != nil {
			return doctor.Input{}, fmt.Errorf("doctor: host namespace: %w", err)
		}
		defer ns.Close()
	}
	fw := cfg.Firewall
	if fw == nil {
		var err error
		if fw, err = core.NewFirewall(firewall.DriverNftables, ns); err != nil {
			return doctor.Input{}, err
		}
	}
	m, err := core.New(core.Config{ConfigDir: cfg.StateDir, Firewall: fw, HostNS: ns, DNSPort: cfg.DNSPort})
	if err != nil {
		return doctor.Input{}, err
	}
	recs, recErr := m.Records()
	in := fromRecords(m, recs)
	rules, forwards, planErr := m.FirewallPlan()
	addPorts(&in, forwards)
	var bridges []string
	for _, n := range in.Networks {
		if n.IsBridge() {
			bridges = append(bridges, n.Bridge)
		}
	}
	in.Host = probe.Collect(ns, probe.Request{Bridges: bridges, OwnTable: nftables.TableName})
	in.Host.Firewall = firewallState(fw, rules, forwards)
	in.Host.DNS = doctor.DNSState{PID: m.DNSServerPID(), Port: m.DNSPort()}
	if recErr != nil {
		return in, recErr
	}
	return in, planErr
}

// fromRecords turns the attach records into networks and attachments.
func fromRecords(m *core.Manager, recs []core.Record) doctor.Input {
	var in doctor.Input
	seen := map[string]bool{}
	for _, r := range recs {
		o := r.Options
		for _, na := range o.Networks {
			n := o.NetworkInfo[na.Name]
			if n.Name == "" {
				n.Name = na.Name
			}
			if !seen[n.Name] {
				seen[n.Name] = true
				in.Networks = append(in.Networks, networkOf(m, n))
			}
			in.Attachments = append(in.Attachments, doctor.Attachment{
				ContainerID: o.ContainerID, Network: n.Name, Interface: na.InterfaceName,
				Addresses: append([]netip.Addr(nil), na.StaticIPs...),
			})
		}
	}
	sort.Slice(in.Networks, func(i, j int) bool { return in.Networks[i].Name < in.Networks[j].Name })
	return in
}

func networkOf(m *core.Manager, n network.Network) doctor.Network {
	d := doctor.Network{
		Name: n.Name, ID: n.ID, Driver: n.Driver, Bridge: n.NetworkInterface,
		Internal: n.Internal, Managed: !n.Unmanaged(), Firewalled: n.Firewalled(),
	}
	for _, s := range n.Subnets {
		d.Subnets = append(d.Subnets, doctor.Subnet{Prefix: s.Subnet.Masked(), Gateway: s.Gateway})
	}
	if n.DNSEnabled && n.Driver == network.DriverBridge {
		if _, err := m.DNSEntries(n.Name); err == nil {
			d.DNS = true
		}
	}
	return d
}

// addPorts gives each attachment the published ports it carries.
func addPorts(in *doctor.Input, forwards []firewall.PortForward) {
	for _, pf := range forwards {
		v4, v6 := pf.Expand()
		for i := range in.Attachments {
			a := &in.Attachments[i]
			if a.ContainerID != pf.ContainerID || a.Network != pf.NetworkName {
				continue
			}
			for _, f := range append(v4, v6...) {
				a.Ports = append(a.Ports, doctor.Port{Proto: f.Proto, HostIP: f.HostIP, HostPort: f.HostPort, Target: netip.AddrPortFrom(f.Target, f.DestPort)})
			}
		}
	}
}

// firewallState asks the driver, when it can tell, which networks' rules
// and which containers' forwards are missing. A container's forwards are
// not asked for when its network's rules are missing already.
func firewallState(fw firewall.Driver, rules []firewall.NetworkRules, forwards []firewall.PortForward) doctor.FirewallState {
	st := doctor.FirewallState{Driver: fw.Name()}
	ck, ok := fw.(firewall.Checker)
	if !ok {
		return st
	}
	st.Checked = true
	missing := map[string]bool{}
	for _, r := range rules {
		if has, err := ck.HasNetwork(r.ID); err == nil && !has {
			missing[r.ID] = true
			st.MissingNetworks = append(st.MissingNetworks, r.ID)
		}
	}
	for _, pf := range forwards {
		if missing[pf.NetworkID] {
			continue
		}
		if err := ck.HasForwards([]firewall.PortForward{pf}); err != nil {
			st.MissingForwards = append(st.MissingForwards, doctor.ForwardGap{ContainerID: pf.ContainerID, Network: pf.NetworkName, Detail: err.Error()})
		}
	}
	return st
}

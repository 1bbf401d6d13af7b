// Package firewalld is berth's firewall driver for hosts whose firewall
// firewalld manages: instead of programming the kernel it asks firewalld,
// over its D-Bus API, for the objects netavark's firewalld driver uses,
// so that firewalld keeps them across its own reloads and the host's
// firewall policy stays in one place.
//
// Setup makes sure of a zone (netavark_zone) and four policies
// (netavark_policy, netavark_portfwd, netavark_host_fwd,
// netavark_zone_acc) in firewalld's permanent configuration, reloading
// firewalld when it had to add one; then it binds each network's subnets
// to the zone as sources and adds the published ports (forward ports and
// rich rules) and the DNS redirects to the runtime policies. Teardown
// removes from the policies every forward to the container's addresses,
// and for a network without containers its DNS redirects and its subnets.
// Nothing else is changed: a subnet bound to another zone is left there
// (and logged), and entries of the policies that berth did not add stay.
//
// Unlike the nftables driver it knows no isolation between networks and
// masquerades every network (firewalld's policies are per zone, and all
// networks share one zone, as in netavark). It sits below core and
// above github.com/godbus/dbus; the calls it makes are behind API.
package firewalld

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/rollback"
)

// Options configure a Driver.
type Options struct {
	// API talks to firewalld; nil dials Address on first use.
	API API
	// Address is the D-Bus address; "" is SystemBusAddress.
	Address string
	// Logger receives what the driver leaves alone; nil discards.
	Logger *slog.Logger
}

// Driver is the firewalld firewall driver. Its methods do no locking of
// their own: callers hold the network-wide lock.
type Driver struct {
	opts Options
	api  API
	log  *slog.Logger
}

var _ firewall.Driver = (*Driver)(nil)

// New returns a firewalld driver. It connects to the bus on its first
// call, so choosing the driver needs no running firewalld.
func New(o Options) *Driver {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Driver{opts: o, api: o.API, log: log}
}

// Name returns firewall.DriverFirewalld.
func (d *Driver) Name() string { return firewall.DriverFirewalld }

func (d *Driver) bus() (API, error) {
	if d.api == nil {
		b, err := Dial(d.opts.Address)
		if err != nil {
			return nil, fmt.Errorf("firewalld: %w", err)
		}
		d.api = b
	}
	return d.api, nil
}

// policies are the policies Setup makes sure of.
var policies = []struct {
	name string
	Policy
}{
	{PolicyOut, Policy{Ingress: Zone, Egress: "ANY", Target: "ACCEPT", Masquerade: true}},
	{PolicyPorts, Policy{Ingress: "ANY", Egress: "ANY", Target: "CONTINUE"}},
	{PolicyLocal, Policy{Ingress: "HOST", Egress: "ANY", Target: "CONTINUE"}},
	{PolicyIn, Policy{Ingress: "ANY", Egress: Zone, Target: "CONTINUE", Masquerade: true}},
}

// ensureObjects adds the zone and the policies that firewalld lacks to its
// permanent configuration and reloads it when it added any (or found one
// only there), so that the runtime configuration has them all.
func ensureObjects(api API) error {
	reload, err := ensure(Zone, api.Zones, api.ZoneNames, api.AddZone)
	if err != nil {
		return fmt.Errorf("zone %s: %w", Zone, err)
	}
	for _, p := range policies {
		add := func(name string) error { return api.AddPolicy(name, p.Policy) }
		r, err := ensure(p.name, api.Policies, api.PolicyNames, add)
		if err != nil {
			return fmt.Errorf("policy %s: %w", p.name, err)
		}
		reload = reload || r
	}
	if !reload {
		return nil
	}
	return api.Reload()
}

// ensure reports whether name needs a reload: false when it is running,
// true when it is only permanent or had to be added.
func ensure(name string, running, permanent func() ([]string, error), add func(string) error) (bool, error) {
	names, err := running()
	if err != nil {
		return false, err
	}
	if slices.Contains(names, name) {
		return false, nil
	}
	if names, err = permanent(); err != nil {
		return false, err
	}
	if slices.Contains(names, name) {
		return true, nil
	}
	return true, add(name)
}

// Setup implements firewall.Driver. The zone and policies it adds stay
// when it fails (they are empty without sources and forwards); the
// sources and forwards of this call do not.
func (d *Driver) Setup(nets []firewall.NetworkRules, ports []firewall.PortForward) (err error) {
	api, err := d.bus()
	if err != nil {
		return err
	}
	add, err := planSetup(nets, ports)
	if err != nil {
		return err
	}
	if err := ensureObjects(api); err != nil {
		return fmt.Errorf("firewalld: %w", err)
	}
	var undo rollback.Stack
	defer undo.OnError(&err)
	if err := d.bindSources(api, nets, &undo); err != nil {
		return fmt.Errorf("firewalld: %w", err)
	}
	if err := addForwards(api, add, &undo); err != nil {
		return fmt.Errorf("firewalld: %w", err)
	}
	return nil
}

// planSetup is every policy entry a setup adds.
func planSetup(nets []firewall.NetworkRules, ports []firewall.PortForward) (portRules, error) {
	var add portRules
	for _, pf := range ports {
		r, err := planPorts(pf)
		if err != nil {
			return portRules{}, err
		}
		add.forward = append(add.forward, r.forward...)
		add.rich = append(add.rich, r.rich...)
		add.local = append(add.local, r.local...)
	}
	for _, n := range nets {
		add.rich = append(add.rich, dnsRules(n)...)
	}
	return add, nil
}

// bindSources binds the subnets of nets to Zone. A subnet bound to another
// zone stays there: that binding is the administrator's.
func (d *Driver) bindSources(api API, nets []firewall.NetworkRules, undo *rollback.Stack) error {
	for _, n := range nets {
		for _, s := range n.Subnets {
			src := s.Masked().String()
			zone, err := api.ZoneOfSource(src)
			if err != nil {
				return err
			}
			switch zone {
			case Zone:
				continue
			case "":
			default:
				d.log.Warn("firewalld: subnet bound to another zone; left there", "subnet", src, "zone", zone, "network", n.Name)
				continue
			}
			if err := api.AddSource(Zone, src); err != nil {
				return err
			}
			undo.Push(func() error { return api.RemoveSource(Zone, src) })
		}
	}
	return nil
}

// addForwards adds the entries of add that the policies lack, after
// checking that none takes a host port forwarded elsewhere.
func addForwards(api API, add portRules, undo *rollback.Stack) error {
	if len(add.forward)+len(add.rich)+len(add.local) == 0 {
		return nil
	}
	ports, err := api.PolicyRules(PolicyPorts)
	if err != nil {
		return err
	}
	local, err := api.PolicyRules(PolicyLocal)
	if err != nil {
		return err
	}
	if err := clash(ports, local, add); err != nil {
		return err
	}
	want := Rules{ForwardPorts: addUnique(ports.ForwardPorts, add.forward), RichRules: addUnique(ports.RichRules, add.rich)}
	if err := replace(api, PolicyPorts, ports, want, undo); err != nil {
		return err
	}
	want = Rules{ForwardPorts: local.ForwardPorts, RichRules: addUnique(local.RichRules, add.local)}
	return replace(api, PolicyLocal, local, want, undo)
}

// replace sets the rules of policy from have to want, when they differ,
// and pushes the step back.
func replace(api API, policy string, have, want Rules, undo *rollback.Stack) error {
	if equalRules(have, want) {
		return nil
	}
	if err := api.SetPolicyRules(policy, want); err != nil {
		return err
	}
	if undo != nil {
		undo.Push(func() error { return api.SetPolicyRules(policy, have) })
	}
	return nil
}

func equalRules(a, b Rules) bool {
	return slices.Equal(a.ForwardPorts, b.ForwardPorts) && slices.Equal(a.RichRules, b.RichRules)
}

// Teardown implements firewall.Driver: it removes every forward to the
// addresses of ports' containers, then, for each network of complete,
// its DNS redirects and the sources of its subnets bound to Zone.
func (d *Driver) Teardown(ports []firewall.PortForward, complete []firewall.NetworkRules) error {
	api, err := d.bus()
	if err != nil {
		return err
	}
	var addrs []netip.Addr
	for _, pf := range ports {
		addrs = append(addrs, pf.IPv4, pf.IPv6)
	}
	var dns []string
	for _, n := range complete {
		dns = append(dns, dnsRules(n)...)
	}
	var errs []error
	if len(ports) > 0 || len(dns) > 0 {
		errs = append(errs, dropForwards(api, addrs, dns))
	}
	for _, n := range complete {
		errs = append(errs, unbindSources(api, n))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("firewalld: %w", err)
	}
	return nil
}

// dropForwards removes from both policies the forwards to addrs and the
// rich rules dns.
func dropForwards(api API, addrs []netip.Addr, dns []string) error {
	return editPolicies(api, func(have Rules) Rules {
		return Rules{
			ForwardPorts: slices.DeleteFunc(slices.Clone(have.ForwardPorts), func(f ForwardPort) bool {
				return slices.ContainsFunc(addrs, func(a netip.Addr) bool { return a.IsValid() && a.String() == f.ToAddr })
			}),
			RichRules: slices.DeleteFunc(slices.Clone(have.RichRules), func(r string) bool {
				return slices.Contains(dns, r) || targets(r, addrs)
			}),
		}
	})
}

// editPolicies replaces the rules of PolicyPorts and PolicyLocal by what
// edit makes of them. A policy that is not running has nothing to edit.
func editPolicies(api API, edit func(Rules) Rules) error {
	running, err := api.Policies()
	if err != nil {
		return err
	}
	for _, policy := range []string{PolicyPorts, PolicyLocal} {
		if !slices.Contains(running, policy) {
			continue
		}
		have, err := api.PolicyRules(policy)
		if err != nil {
			return err
		}
		if err := replace(api, policy, have, edit(have), nil); err != nil {
			return err
		}
	}
	return nil
}

// unbindSources removes the subnets of n from Zone, those bound to it.
func unbindSources(api API, n firewall.NetworkRules) error {
	for _, s := range n.Subnets {
		src := s.Masked().String()
		zone, err := api.ZoneOfSource(src)
		if err != nil {
			return err
		}
		if zone != Zone {
			continue
		}
		if err := api.RemoveSource(Zone, src); err != nil {
			return err
		}
	}
	return nil
}

// Reset implements firewall.Driver: it unbinds every source of Zone and
// empties the forwards and rich rules of PolicyPorts and PolicyLocal in
// firewalld's runtime configuration. The zone and the policies stay
// defined (empty, they change no packet).
func (d *Driver) Reset() error {
	api, err := d.bus()
	if err != nil {
		return err
	}
	if err := reset(api); err != nil {
		return fmt.Errorf("firewalld: %w", err)
	}
	return nil
}

func reset(api API) error {
	zones, err := api.Zones()
	if err != nil {
		return err
	}
	if slices.Contains(zones, Zone) {
		sources, err := api.Sources(Zone)
		if err != nil {
			return err
		}
		for _, s := range sources {
			if err := api.RemoveSource(Zone, s); err != nil {
				return err
			}
		}
	}
	return editPolicies(api, func(Rules) Rules { return Rules{} })
}

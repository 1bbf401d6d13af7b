package firewalld

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/berthnet/berth/internal/firewall"
)

// Trusted is firewalld's zone that accepts everything; Alongside binds
// the networks' subnets to it.
const Trusted = "trusted"

// Companion is a firewall driver that programs the kernel itself
// (nftables, iptables) made to live with a firewalld on the same host,
// as netavark's drivers do: firewalld's own rules would reject the
// containers' forwarded traffic, and its StrictForwardPorts setting
// forbids port forwards that firewalld does not own.
type Companion struct {
	inner firewall.Driver
	opts  Options
	api   API
	log   *slog.Logger
}

// Alongside returns inner made to live with firewalld. When firewalld
// runs (on the bus of o), a setup is refused with ErrStrictForwardPorts
// before inner is called if StrictForwardPorts is "yes" and the setup
// forwards ports (or redirects DNS); after inner's setup each subnet that
// no zone holds is bound to the trusted zone at runtime. A teardown of a
// network unbinds its subnets from the trusted zone unless that binding
// is in firewalld's permanent configuration (the administrator's). When
// firewalld is not reachable it is inner alone. Errors of the bindings are
// logged, not returned. The result keeps inner's firewall.Checker,
// firewall.Healer, firewall.Polled and firewall.Versioned (firewalld's own changes to the
// ruleset, such as a zone binding, count as another writer's).
func Alongside(inner firewall.Driver, o Options) firewall.Driver {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Companion{inner: inner, opts: o, api: o.API, log: log}
	ch, isChecker := inner.(firewall.Checker)
	h, isHealer := inner.(firewall.Healer)
	v, isVersioned := inner.(firewall.Versioned)
	switch {
	case isChecker && isHealer && isVersioned:
		return versionedCompanion{healingCompanion{c, ch, h}, v}
	case isChecker && isHealer:
		return healingCompanion{c, ch, h}
	case isChecker:
		return checkingCompanion{c, ch}
	case isHealer:
		return repairingCompanion{c, h}
	}
	return c
}

type checkingCompanion struct {
	*Companion
	firewall.Checker
}

type healingCompanion struct {
	*Companion
	firewall.Checker
	firewall.Healer
}

// repairingCompanion is for a healer that is no checker (iptables).
type repairingCompanion struct {
	*Companion
	firewall.Healer
}

type versionedCompanion struct {
	healingCompanion
	firewall.Versioned
}

// Repair implements firewall.Healer: the inner driver's repair, then the
// trusted zone's bindings, which a firewalld reload drops.
func (c healingCompanion) Repair(nets []firewall.NetworkRules, ports []firewall.PortForward) error {
	return c.repair(c.Healer, nets, ports)
}

// Repair implements firewall.Healer, as healingCompanion's does.
func (c repairingCompanion) Repair(nets []firewall.NetworkRules, ports []firewall.PortForward) error {
	return c.repair(c.Healer, nets, ports)
}

// repair is h's repair, then the trusted zone's bindings.
func (c *Companion) repair(h firewall.Healer, nets []firewall.NetworkRules, ports []firewall.PortForward) error {
	if err := h.Repair(nets, ports); err != nil {
		return err
	}
	if api, running := c.firewalld(); running {
		c.trust(api, nets)
	}
	return nil
}

// Unannounced implements firewall.Polled: the inner driver's answer
// (false when it cannot tell).
func (c *Companion) Unannounced() bool {
	p, ok := c.inner.(firewall.Polled)
	return ok && p.Unannounced()
}

// Name implements firewall.Driver: the inner driver's name.
func (c *Companion) Name() string { return c.inner.Name() }

// firewalld returns the API when firewalld runs.
func (c *Companion) firewalld() (API, bool) {
	if c.api == nil {
		b, err := Dial(c.opts.Address)
		if err != nil {
			c.log.Debug("no firewalld", "error", err)
			return nil, false
		}
		c.api = b
	}
	return c.api, c.api.Running()
}

// Setup implements firewall.Driver.
func (c *Companion) Setup(nets []firewall.NetworkRules, ports []firewall.PortForward) error {
	api, running := c.firewalld()
	if running {
		if err := c.checkStrict(api, nets, ports); err != nil {
			return err
		}
	}
	if err := c.inner.Setup(nets, ports); err != nil {
		return err
	}
	if running {
		c.trust(api, nets)
	}
	return nil
}

// checkStrict refuses forwards when StrictForwardPorts is "yes".
func (c *Companion) checkStrict(api API, nets []firewall.NetworkRules, ports []firewall.PortForward) error {
	v, ok := api.StrictForwardPorts()
	if !ok {
		return nil
	}
	switch strings.ToLower(v) {
	case "yes":
		if forwards(nets, ports) {
			return ErrStrictForwardPorts
		}
	case "no":
	default:
		c.log.Warn(fmt.Sprintf("unexpected value from StrictForwardPorts property: %s", v))
	}
	return nil
}

// forwards reports whether a setup forwards ports: published ports or a
// DNS server off port 53.
func forwards(nets []firewall.NetworkRules, ports []firewall.PortForward) bool {
	for _, pf := range ports {
		if len(pf.Mappings) > 0 {
			return true
		}
	}
	return slices.ContainsFunc(nets, func(n firewall.NetworkRules) bool { return len(dnsRules(n)) > 0 })
}

// trust binds the subnets no zone holds to Trusted.
func (c *Companion) trust(api API, nets []firewall.NetworkRules) {
	for _, n := range nets {
		for _, s := range n.Subnets {
			src := s.Masked().String()
			zone, err := api.ZoneOfSource(src)
			if err == nil && zone == "" {
				err = api.AddSource(Trusted, src)
			}
			if err != nil {
				c.log.Warn("firewalld: cannot add the subnet to the trusted zone", "subnet", src, "error", err)
			}
		}
	}
}

// Teardown implements firewall.Driver.
func (c *Companion) Teardown(ports []firewall.PortForward, complete []firewall.NetworkRules) error {
	err := c.inner.Teardown(ports, complete)
	if len(complete) == 0 {
		return err
	}
	if api, running := c.firewalld(); running {
		c.distrust(api, complete)
	}
	return err
}

// distrust unbinds the subnets of nets from Trusted, unless the permanent
// configuration binds them there.
func (c *Companion) distrust(api API, nets []firewall.NetworkRules) {
	var permanent []string
	for _, n := range nets {
		for _, s := range n.Subnets {
			src := s.Masked().String()
			zone, err := api.ZoneOfSource(src)
			if err == nil && zone != Trusted {
				continue
			}
			if err == nil && permanent == nil {
				permanent, err = api.PermanentSources(Trusted)
			}
			if err == nil && slices.Contains(permanent, src) {
				continue
			}
			if err == nil {
				err = api.RemoveSource(Trusted, src)
			}
			if err != nil {
				c.log.Warn("firewalld: cannot remove the subnet from the trusted zone", "subnet", src, "error", err)
			}
		}
	}
}

// Reset implements firewall.Driver: the inner driver's reset. The trusted
// zone's bindings stay: without the networks, berth cannot tell its own.
func (c *Companion) Reset() error { return c.inner.Reset() }

// Package beside keeps berth's containers' forwarded traffic flowing on a
// host whose other firewall rules drop forwarded traffic by policy:
// Docker's (iptables FORWARD policy DROP, with its DOCKER-USER chain for
// the administrator's rules) or the host's own nftables table with a
// forward chain of policy drop. netfilter runs every base chain on the
// forward hook and any of them may drop what berth's own rules accept, so
// berth keeps accept rules for its networks in those chains, marked with
// each network's comment (firewall.Mark), for as long as the network has
// containers.
//
// Wrap puts that around the nftables or iptables driver: after every
// setup the accept rules of its networks are made sure of, the teardown of
// a network's last container removes that network's, and the driver's
// firewall.Healer (when it has one) checks and restores them with the
// rest. Where they go and what they are is in package nftables
// (EnsureAccepts, native rules appended to another table's chain) and
// package iptables (Accepts: Docker's DOCKER-USER, or the end of FORWARD).
package beside

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/firewall/iptables"
	"github.com/berthnet/berth/internal/firewall/nftables"
)

// Options say how Wrap reaches the other programs' rules.
type Options struct {
	// Nft reads and changes the namespace's nftables over netlink: other
	// tables' forward chains, and whether iptables-nft's FORWARD chains
	// exist. Required.
	Nft *nftables.Driver
	// Iptables reaches the iptables tables with its binaries. Nil: the
	// iptables-nft binaries in PATH, in NetNSPath, when nftables shows
	// iptables-nft's FORWARD chains (an iptables-legacy ruleset is not
	// seen then).
	Iptables *iptables.Driver
	// Outbound accepts the networks' own traffic in iptables' FORWARD path
	// too, which berth's nftables driver needs and its iptables driver
	// (NETAVARK_FORWARD) does not.
	Outbound bool
	// NetNSPath is the namespace for the iptables-nft binaries ("": the
	// caller's).
	NetNSPath string
	// Logger receives the warnings of accept rules that could not be
	// added; nil discards them.
	Logger *slog.Logger
}

// Wrapper is a firewall driver with berth's accept rules kept in other
// programs' forward chains.
type Wrapper struct {
	inner firewall.Driver
	o     Options
	log   *slog.Logger

	mu  sync.Mutex
	ipt *iptables.Driver // found on first need when o.Iptables is nil
}

// Wrap returns inner with berth's accept rules kept beside other
// programs' rules (see the package doc). The result keeps inner's
// firewall.Checker, firewall.Healer, firewall.Polled and
// firewall.Versioned; its Healer
// also checks and restores the accept rules, so rules that another
// program's start made necessary (Docker started after berth) are added
// by the next heal, setup or reload.
func Wrap(inner firewall.Driver, o Options) firewall.Driver {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Wrapper{inner: inner, o: o, log: log}
	ch, isChecker := inner.(firewall.Checker)
	h, isHealer := inner.(firewall.Healer)
	v, isVersioned := inner.(firewall.Versioned)
	switch {
	case isChecker && isHealer && isVersioned:
		return versioned{healing{w, ch, h}, v}
	case isChecker && isHealer:
		return healing{w, ch, h}
	case isChecker:
		return checking{w, ch}
	case isHealer:
		return repairing{w, h}
	}
	return w
}

type checking struct {
	*Wrapper
	firewall.Checker
}

type healing struct {
	*Wrapper
	firewall.Checker
	h firewall.Healer
}

// repairing is for a healer that is no checker (iptables).
type repairing struct {
	*Wrapper
	h firewall.Healer
}

type versioned struct {
	healing
	firewall.Versioned
}

// Name implements firewall.Driver: the inner driver's name.
func (w *Wrapper) Name() string { return w.inner.Name() }

// Setup implements firewall.Driver: the inner driver's setup, then the
// accept rules of nets. Those that cannot be added are logged, not
// returned: the containers are set up, and the next heal or reload tries
// again (berth network doctor names what is missing).
func (w *Wrapper) Setup(nets []firewall.NetworkRules, ports []firewall.PortForward) error {
	if err := w.inner.Setup(nets, ports); err != nil {
		return err
	}
	if err := w.ensure(nets); err != nil {
		w.log.Warn("cannot add berth's accept rules to other programs' forward chains; the containers' forwarded traffic may be dropped", "error", err)
	}
	return nil
}

// Teardown implements firewall.Driver: the inner driver's teardown, then
// the removal of the accept rules of the networks in complete.
func (w *Wrapper) Teardown(ports []firewall.PortForward, complete []firewall.NetworkRules) error {
	err := w.inner.Teardown(ports, complete)
	if len(complete) == 0 {
		return err
	}
	ids := make([]string, 0, len(complete))
	for _, n := range complete {
		ids = append(ids, n.ID)
	}
	return errors.Join(err, w.remove(ids, false))
}

// Reset implements firewall.Driver: the inner driver's reset, and every
// rule marked as berth's in other programs' forward chains.
func (w *Wrapper) Reset() error {
	return errors.Join(w.inner.Reset(), w.remove(nil, true))
}

// Damage implements firewall.Healer: what the inner driver finds missing,
// and whether accept rules of nets are.
func (h healing) Damage(nets []firewall.NetworkRules, ports []firewall.PortForward) ([]string, error) {
	return h.damage(h.h, nets, ports)
}

// Repair implements firewall.Healer: the inner driver's repair, then the
// accept rules of nets.
func (h healing) Repair(nets []firewall.NetworkRules, ports []firewall.PortForward) error {
	return h.repair(h.h, nets, ports)
}

// Damage implements firewall.Healer, as healing's does.
func (r repairing) Damage(nets []firewall.NetworkRules, ports []firewall.PortForward) ([]string, error) {
	return r.damage(r.h, nets, ports)
}

// Repair implements firewall.Healer, as healing's does.
func (r repairing) Repair(nets []firewall.NetworkRules, ports []firewall.PortForward) error {
	return r.repair(r.h, nets, ports)
}

// damage is inner's damage, then the accept rules' (looked at only when
// inner's rules are all there: a repair restores both anyway).
func (w *Wrapper) damage(inner firewall.Healer, nets []firewall.NetworkRules, ports []firewall.PortForward) ([]string, error) {
	found, err := inner.Damage(nets, ports)
	if err != nil || len(found) > 0 {
		return found, err
	}
	ok, err := w.intact(nets)
	if err != nil || ok {
		return nil, err
	}
	return []string{"accept rules in other programs' forward chains missing"}, nil
}

// repair is inner's repair, then the accept rules of nets.
func (w *Wrapper) repair(inner firewall.Healer, nets []firewall.NetworkRules, ports []firewall.PortForward) error {
	if err := inner.Repair(nets, ports); err != nil {
		return err
	}
	return w.ensure(nets)
}

// Unannounced implements firewall.Polled: the inner driver's answer
// (false when it cannot tell).
func (w *Wrapper) Unannounced() bool {
	p, ok := w.inner.(firewall.Polled)
	return ok && p.Unannounced()
}

// ensure adds the missing accept rules of nets: over netlink in other
// tables, then with the iptables binaries.
func (w *Wrapper) ensure(nets []firewall.NetworkRules) error {
	others, err := w.o.Nft.EnsureAccepts(nets)
	if err != nil {
		return err
	}
	a, nets, err := w.iptables(others, nets)
	if a == nil || err != nil {
		return err
	}
	if err := a.Ensure(nets); err != nil {
		return fmt.Errorf("accept rules in iptables' FORWARD path: %w", err)
	}
	return nil
}

// intact reports whether every accept rule of nets is in place.
func (w *Wrapper) intact(nets []firewall.NetworkRules) (bool, error) {
	ok, others, err := w.o.Nft.AcceptsIntact(nets)
	if err != nil || !ok {
		return ok, err
	}
	a, nets, err := w.iptables(others, nets)
	if a == nil || err != nil {
		return true, err
	}
	missing, err := a.Missing(nets)
	return !missing, err
}

// remove deletes the accept rules of the networks with these IDs (with
// all, every rule marked as berth's) from other programs' chains.
func (w *Wrapper) remove(ids []string, all bool) error {
	others, err := w.o.Nft.RemoveAccepts(ids, all)
	if w.o.Iptables == nil && !others.Iptables4 && !others.Iptables6 {
		return err
	}
	ipt, ierr := w.iptablesDriver()
	if ierr != nil {
		return err // without the binaries berth added nothing there
	}
	a := ipt.Accepts(w.o.Outbound)
	if all {
		return errors.Join(err, a.RemoveAll())
	}
	return errors.Join(err, a.Remove(ids))
}

// iptables returns the accept rules of the iptables tables and the part
// of nets they concern: with the configured driver, all of nets; else the
// subnets of the families whose iptables-nft FORWARD chain may need them
// (it drops by policy, or Docker's DOCKER-USER is there); a nil result:
// none does.
func (w *Wrapper) iptables(others nftables.Others, nets []firewall.NetworkRules) (*iptables.Accepts, []firewall.NetworkRules, error) {
	if w.o.Iptables == nil {
		if !others.Drops4 && !others.Drops6 {
			return nil, nil, nil
		}
		nets = families(nets, others.Drops4, others.Drops6)
		// What nftables shows of iptables-nft's rules spares the
		// binaries (a few milliseconds a run) when nothing is missing.
		if inPlace(others, nets, iptables.CountAccepts(w.o.Outbound)) {
			return nil, nil, nil
		}
	}
	ipt, err := w.iptablesDriver()
	if err != nil {
		return nil, nil, err
	}
	return ipt.Accepts(w.o.Outbound), nets, nil
}

// inPlace reports whether the marks nftables counts in iptables-nft's
// tables account for every accept rule of nets, whose numbers count
// gives.
func inPlace(others nftables.Others, nets []firewall.NetworkRules, count func(firewall.NetworkRules) (v4, v6 int)) bool {
	for _, n := range nets {
		v4, v6 := count(n)
		m := firewall.Mark(n.ID)
		if others.Marks4[m] != v4 || others.Marks6[m] != v6 {
			return false
		}
	}
	return true
}

// iptablesDriver returns the configured iptables driver, or one with the
// iptables-nft binaries.
func (w *Wrapper) iptablesDriver() (*iptables.Driver, error) {
	if w.o.Iptables != nil {
		return w.o.Iptables, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ipt != nil {
		return w.ipt, nil
	}
	d, err := iptables.New(iptables.Options{
		Save: "iptables-nft-save", Restore: "iptables-nft-restore",
		Save6: "ip6tables-nft-save", Restore6: "ip6tables-nft-restore",
		NetNSPath: w.o.NetNSPath, Logger: w.o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("iptables-nft's FORWARD chain is in use, but berth cannot change it: %w", err)
	}
	w.ipt = d
	return d, nil
}

// families returns nets with only the subnets of the families asked for.
func families(nets []firewall.NetworkRules, v4, v6 bool) []firewall.NetworkRules {
	out := make([]firewall.NetworkRules, 0, len(nets))
	for _, n := range nets {
		s4, s6 := firewall.SubnetsOf(n.Subnets)
		var keep []netip.Prefix
		if v4 {
			keep = append(keep, s4...)
		}
		if v6 {
			keep = append(keep, s6...)
		}
		n.Subnets = keep
		out = append(out, n)
	}
	return out
}

package iptables

import (
	"errors"
	"os/exec"
	"strings"

	"github.com/berthnet/berth/internal/firewall"
)

// Accept rules beside another program's iptables rules. Docker sets the
// policy of the filter table's FORWARD chain to DROP and documents its
// DOCKER-USER chain, which FORWARD jumps to first, as the place for the
// administrator's own rules. On such a host the containers' forwarded
// traffic is dropped unless a rule of FORWARD accepts it: with berth's
// nftables driver none does (an accept in berth's own table does not stop
// another base chain from dropping), and with this driver none accepts
// connections to published ports (NETAVARK_FORWARD accepts the networks'
// own traffic and replies only).
//
// So berth keeps accept rules for its networks there, each marked with the
// network's comment (firewall.Mark): in DOCKER-USER when FORWARD jumps to
// it (before its final "-j RETURN", which Docker before 28 adds), else at
// the end of FORWARD when its policy is DROP, so that only what the policy
// would drop is accepted. Per subnet S of a network on bridge B:
//
//	-d S -o B -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment "berth net ID" -j ACCEPT
//	-s S -i B -m comment --comment "berth net ID" -j ACCEPT    (Outbound only)
//
// The first lets replies and published ports in, the second the
// containers' own traffic out; without a bridge the -i/-o matches are left
// out. Removal deletes the rules carrying the networks' marks, wherever in
// the filter table they are, and nothing else.

// chainDockerUser is Docker's chain for the administrator's rules.
const chainDockerUser = "DOCKER-USER"

// Accepts keeps berth's accept rules in the filter table's forward path
// with the driver's binaries and namespace.
type Accepts struct {
	d *Driver
	// outbound adds the rule for the containers' own traffic.
	outbound bool
}

// Accepts returns the accept rules of the driver's binaries and
// namespace. outbound adds the rule that accepts the networks' own
// traffic, for a driver whose rules are not in this table (nftables);
// this driver accepts that in NETAVARK_FORWARD already.
func (d *Driver) Accepts(outbound bool) *Accepts { return &Accepts{d: d, outbound: outbound} }

// CountAccepts returns a function that counts the accept rules of a
// network in each family (outbound as for Accepts): the rules marked with
// its comment that a chain holds once they are all in place.
func CountAccepts(outbound bool) func(n firewall.NetworkRules) (v4, v6 int) {
	return func(n firewall.NetworkRules) (int, int) {
		return len(acceptRules(n, ipv4, outbound)), len(acceptRules(n, ipv6, outbound))
	}
}

// Ensure adds the accept rules of nets that are missing where they belong
// (see Missing), with one iptables-restore per family that needs any.
func (a *Accepts) Ensure(nets []firewall.NetworkRules) error {
	return a.each(nets, func(f family, rs *ruleset) error {
		p := planAccepts(rs, f, nets, a.outbound)
		if p.empty() {
			return nil
		}
		return a.d.restore(f, "accept rules", p.restoreScript())
	})
}

// Missing reports whether an accept rule of nets is missing from the chain
// where it belongs: DOCKER-USER when FORWARD jumps to it, else FORWARD when
// its policy is DROP. Where neither is so, none is needed.
func (a *Accepts) Missing(nets []firewall.NetworkRules) (bool, error) {
	missing := false
	err := a.each(nets, func(f family, rs *ruleset) error {
		missing = missing || !planAccepts(rs, f, nets, a.outbound).empty()
		return nil
	})
	return missing, err
}

// Remove deletes the accept rules of the networks with these IDs from
// every chain of the filter table, in both families; a family whose
// binaries are missing has none.
func (a *Accepts) Remove(ids []string) error {
	marks := map[string]bool{}
	for _, id := range ids {
		marks[firewall.Mark(id)] = true
	}
	return a.remove(func(comment string) bool { return marks[comment] })
}

// RemoveAll deletes every rule of the filter table marked as berth's.
func (a *Accepts) RemoveAll() error {
	return a.remove(func(comment string) bool {
		_, ok := firewall.MarkedID(comment)
		return ok
	})
}

func (a *Accepts) remove(match func(comment string) bool) error {
	var errs []error
	for _, f := range families {
		rs, err := a.d.save(f)
		if err != nil {
			if !errors.Is(err, exec.ErrNotFound) {
				errs = append(errs, err)
			}
			continue
		}
		if p := planRemoveAccepts(rs, match); !p.empty() {
			if err := a.d.restore(f, "remove accept rules", p.restoreScript()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// each calls fn with the saved rules of every family nets have subnets of.
func (a *Accepts) each(nets []firewall.NetworkRules, fn func(family, *ruleset) error) error {
	for _, f := range families {
		if !involved(f, nets, nil) {
			continue
		}
		rs, err := a.d.save(f)
		if err != nil {
			return err
		}
		if err := fn(f, rs); err != nil {
			return err
		}
	}
	return nil
}

// acceptChain returns the chain of the filter table where berth's accept
// rules belong, "" when none is needed: DOCKER-USER when FORWARD jumps to
// it, else FORWARD when its policy is DROP.
func acceptChain(rs *ruleset) string {
	fwd := rs.chain(tableFilter, chainForward)
	if fwd == nil {
		return ""
	}
	if rs.chain(tableFilter, chainDockerUser) != nil {
		for _, r := range fwd.rules {
			if jumpTarget(r) == chainDockerUser {
				return chainDockerUser
			}
		}
	}
	if fwd.policy == "DROP" {
		return chainForward
	}
	return ""
}

// acceptRules returns the accept rules of network n in family f, in
// iptables-save's form.
func acceptRules(n firewall.NetworkRules, f family, outbound bool) []string {
	mark := `-m comment --comment "` + firewall.Mark(n.ID) + `"`
	in, out := "", ""
	if n.Bridge != "" {
		in, out = " -o "+n.Bridge, " -i "+n.Bridge
	}
	var specs []string
	for _, s := range subnets(n, f) {
		sub := prefixString(s)
		specs = append(specs, "-d "+sub+in+" -m conntrack --ctstate RELATED,ESTABLISHED,DNAT "+mark+" -j ACCEPT")
		if outbound {
			specs = append(specs, "-s "+sub+out+" "+mark+" -j ACCEPT")
		}
	}
	return specs
}

// planAccepts plans the accept rules of nets in family f that the chain
// acceptChain names lacks. In DOCKER-USER they go before a final
// unconditional "-j RETURN", elsewhere at the end.
func planAccepts(current *ruleset, f family, nets []firewall.NetworkRules, outbound bool) *planner {
	p := newPlanner(current)
	target := acceptChain(p.rs)
	if target == "" {
		return p
	}
	c := p.rs.chain(tableFilter, target)
	for _, n := range nets {
		for _, spec := range acceptRules(n, f, outbound) {
			if c.has(spec) {
				continue
			}
			pos := 0
			if k := len(c.rules); target == chainDockerUser && k > 0 && c.rules[k-1] == "-j RETURN" {
				pos = k
			}
			p.add(rule{table: tableFilter, chain: target, spec: spec, insert: pos})
		}
	}
	return p
}

// planRemoveAccepts plans the deletion of every rule of the filter table
// whose comment match accepts.
func planRemoveAccepts(current *ruleset, match func(comment string) bool) *planner {
	p := newPlanner(current)
	t := p.rs.tables[tableFilter]
	if t == nil {
		return p
	}
	for _, c := range t.sortedChains() {
		for _, r := range append([]string(nil), c.rules...) {
			if cm, ok := commentOf(r); ok && match(cm) {
				p.del(tableFilter, c.name, r)
			}
		}
	}
	return p
}

// commentOf returns the text of a rule spec's first --comment, as
// iptables-save prints it: a word, or a double-quoted string in which \"
// and \\ stand for " and \. ok is false without one, or when its quote
// does not close.
func commentOf(spec string) (comment string, ok bool) {
	words, ok := splitWords(spec)
	if !ok {
		return "", false
	}
	for i := 0; i+1 < len(words); i++ {
		if words[i] == "--comment" {
			return words[i+1], true
		}
	}
	return "", false
}

// splitWords splits a rule spec into its words as a shell would for
// iptables: at spaces outside double quotes, with the quotes removed and
// \" and \\ inside them unescaped. ok is false for an unclosed quote.
func splitWords(spec string) (words []string, ok bool) {
	var b strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(spec); i++ {
		c := spec[i]
		switch {
		case quoted && c == '\\' && i+1 < len(spec) && (spec[i+1] == '"' || spec[i+1] == '\\'):
			i++
			b.WriteByte(spec[i])
		case c == '"':
			quoted, inWord = !quoted, true
		case c == ' ' && !quoted:
			if inWord {
				words = append(words, b.String())
				b.Reset()
			}
			inWord = false
		default:
			b.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, false
	}
	if inWord {
		words = append(words, b.String())
	}
	return words, true
}

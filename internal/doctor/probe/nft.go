package probe

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"

	"github.com/berthnet/berth/internal/doctor"
	"github.com/berthnet/berth/internal/netns"
)

// iptablesChain is berth's iptables driver's forward chain: rules after the
// jump to it (and the chain's policy) do not see berth's traffic, which it
// accepts.
const iptablesChain = "NETAVARK_FORWARD"

// readDrops lists the base chains on the forward hook of every table but
// berth's own that drop traffic: by policy, or by a rule (followed into
// the chains it jumps to) that is not limited to a conntrack state such
// as "invalid".
func readDrops(ns *netns.NetNS, own string, s *doctor.Snapshot) {
	var c *nftables.Conn
	open := func() error {
		var err error
		c, err = nftables.New(nftables.AsLasting())
		return err
	}
	var err error
	if ns == nil {
		err = open()
	} else {
		err = ns.Do(open)
	}
	if err != nil {
		s.Unread = append(s.Unread, fmt.Sprintf("nftables: %v", err))
		return
	}
	defer c.CloseLasting()
	chains, err := c.ListChains()
	if err != nil {
		s.Unread = append(s.Unread, fmt.Sprintf("nftables chains: %v", err))
		return
	}
	byName := map[string]*nftables.Chain{}
	for _, ch := range chains {
		byName[chainKey(ch.Table, ch.Name)] = ch
	}
	for _, ch := range chains {
		fam := familyName(ch.Table.Family)
		if fam == "" || ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookForward {
			continue
		}
		if ch.Table.Family == nftables.TableFamilyINet && ch.Table.Name == own {
			continue
		}
		where := fmt.Sprintf("table %s %s chain %s", fam, ch.Table.Name, ch.Name)
		w := walker{c: c, byName: byName, seen: map[string]bool{}}
		drops, stopped := w.walk(ch, where, 0)
		for _, d := range drops {
			s.Drops = append(s.Drops, doctor.Drop{Chain: where, Family: fam, Rule: d})
		}
		if !stopped && ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop {
			s.Drops = append(s.Drops, doctor.Drop{Chain: where, Family: fam, Policy: true})
		}
	}
}

func chainKey(t *nftables.Table, name string) string {
	return fmt.Sprintf("%d/%s/%s", t.Family, t.Name, name)
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyBridge:
		return "bridge"
	}
	return ""
}

// walker follows a chain's rules and its jumps.
type walker struct {
	c      *nftables.Conn
	byName map[string]*nftables.Chain
	seen   map[string]bool
}

// walk returns the dropping rules of ch (and of the chains it jumps to),
// described, and stopped true when a rule jumps to berth's iptables
// chain (what follows does not see berth's traffic).
func (w walker) walk(ch *nftables.Chain, where string, depth int) (drops []string, stopped bool) {
	key := chainKey(ch.Table, ch.Name)
	if depth > 8 || w.seen[key] {
		return nil, false
	}
	w.seen[key] = true
	rules, err := w.c.GetRules(ch.Table, ch)
	if err != nil {
		return nil, false
	}
	for _, r := range rules {
		v, target, stateful := verdictOf(r)
		switch {
		case target == iptablesChain:
			return drops, true
		case target != "":
			if sub := w.byName[chainKey(ch.Table, target)]; sub != nil {
				d, stop := w.walk(sub, where, depth+1)
				drops = append(drops, d...)
				if stop && v == expr.VerdictGoto {
					return drops, true
				}
			}
		case v == expr.VerdictDrop && !stateful:
			drops = append(drops, describeRule(ch, r))
		}
	}
	return drops, false
}

// verdictOf returns a rule's final verdict (reject counts as drop), the
// chain it jumps or goes to, and whether it matches a conntrack state.
func verdictOf(r *nftables.Rule) (v expr.VerdictKind, target string, stateful bool) {
	v = expr.VerdictContinue
	for _, e := range r.Exprs {
		switch x := e.(type) {
		case *expr.Ct:
			if x.Key == expr.CtKeySTATE {
				stateful = true
			}
		case *expr.Match:
			if x.Name == "conntrack" || x.Name == "state" {
				stateful = true
			}
		case *expr.Verdict:
			v = x.Kind
			if x.Kind == expr.VerdictJump || x.Kind == expr.VerdictGoto {
				target = x.Chain
			}
		case *expr.Reject:
			v = expr.VerdictDrop
		case *expr.Target:
			if x.Name == "REJECT" || x.Name == "DROP" {
				v = expr.VerdictDrop
			}
		}
	}
	return v, target, stateful
}

func describeRule(ch *nftables.Chain, r *nftables.Rule) string {
	d := fmt.Sprintf("rule handle %d in chain %s", r.Handle, ch.Name)
	if c, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok && c != "" {
		d += fmt.Sprintf(" (comment %q)", c)
	}
	return d
}

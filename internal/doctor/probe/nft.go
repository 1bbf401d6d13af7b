package probe

import (
	"fmt"
	"maps"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/google/nftables/xt"

	"github.com/berthnet/berth/internal/doctor"
	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/netns"
)

// iptablesChain is berth's iptables driver's forward chain: rules after the
// jump to it (and the chain's policy) do not see berth's traffic, which it
// accepts.
const iptablesChain = "NETAVARK_FORWARD"

// readDrops lists the base chains on the forward hook of every table but
// berth's own that drop traffic: by policy, or by a rule (followed into
// the chains it jumps to) that is not limited to a conntrack state such
// as "invalid". A drop policy comes with the networks whose accept rules
// berth keeps in the chain or the chains it jumps to (Docker's
// DOCKER-USER): rules that accept and carry berth's mark.
func readDrops(ns *netns.NetNS, own string, s *doctor.Snapshot) {
	var c *nftables.Conn
	open := func() error {
		var err error
		c, err = nftables.New(nftables.AsLasting())
		return err
	}
	if err := inNS(ns, open); err != nil {
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
		w := &walker{c: c, byName: byName, seen: map[string]bool{}, accepted: map[string]string{}}
		for _, d := range w.walk(ch, 0) {
			s.Drops = append(s.Drops, doctor.Drop{Chain: where, Family: fam, Rule: d.desc, Accepted: d.accepted})
		}
		// Published ports reach the policy past berth's iptables chain
		// too (it accepts only the networks' own traffic and replies).
		if ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop {
			s.Drops = append(s.Drops, doctor.Drop{Chain: where, Family: fam, Policy: true, Accepted: w.accepted})
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
	// accepted maps the network ID of each accept rule marked as berth's
	// seen so far to the chain it is in.
	accepted map[string]string
	// stopped: a rule jumped to berth's iptables chain; the drop rules
	// after it do not see berth's traffic.
	stopped bool
}

// ruleDrop is a dropping rule, described, with the networks whose accept
// rules come before it.
type ruleDrop struct {
	desc     string
	accepted map[string]string
}

// walk returns the dropping rules of ch (and of the chains it jumps to)
// up to a jump to berth's iptables chain, and records berth's accept
// rules all along.
func (w *walker) walk(ch *nftables.Chain, depth int) (drops []ruleDrop) {
	key := chainKey(ch.Table, ch.Name)
	if depth > 8 || w.seen[key] {
		return nil
	}
	w.seen[key] = true
	rules, err := w.c.GetRules(ch.Table, ch)
	if err != nil {
		return nil
	}
	for _, r := range rules {
		v, target, stateful := verdictOf(r)
		switch {
		case target == iptablesChain:
			w.stopped = true
		case target != "":
			if sub := w.byName[chainKey(ch.Table, target)]; sub != nil {
				drops = append(drops, w.walk(sub, depth+1)...)
			}
		case v == expr.VerdictDrop && !stateful && !w.stopped:
			drops = append(drops, ruleDrop{desc: describeRule(ch, r), accepted: maps.Clone(w.accepted)})
		case v == expr.VerdictAccept:
			if id, ok := firewall.MarkedID(mark(r)); ok {
				w.accepted[id] = ch.Name
			}
		}
	}
	return drops
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

// mark returns a rule's comment: its own (nftables), or that of an
// iptables comment match (iptables-nft); "" when it has none.
func mark(r *nftables.Rule) string {
	if c, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok && c != "" {
		return strings.TrimRight(c, "\x00")
	}
	for _, e := range r.Exprs {
		if m, ok := e.(*expr.Match); ok && m.Name == "comment" {
			if c, ok := m.Info.(*xt.Comment); ok {
				return string(*c)
			}
		}
	}
	return ""
}

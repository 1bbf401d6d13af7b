package nftables

import (
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/firewall"
)

// Accept rules in other tables. netfilter runs every base chain on the
// forward hook, and a drop in any of them is final: an accept in berth's
// table does not stop a host's own table, say
//
//	table inet filter { chain forward { type filter hook forward priority 0; policy drop; ... } }
//
// from dropping the containers' traffic. So berth appends its own accept
// rules to each such chain (a base chain of type filter on the forward
// hook whose policy is drop, in a table of family ip, ip6 or inet that is
// not berth's), per network subnet S on bridge B:
//
//	[meta nfproto F] oifname B ip daddr S ct state established,related accept comment "berth net ID"
//	[meta nfproto F] oifname B ip daddr S ct status dnat accept comment "berth net ID"
//	[meta nfproto F] iifname B ip saddr S accept comment "berth net ID"
//
// Appended, they come after the chain's own rules: what those drop stays
// dropped, and only what the policy would drop is accepted. Their comment,
// the network's mark (firewall.Mark), is the only thing that tells them
// from the table's own rules; removal deletes by it and touches nothing
// else. iptables-nft's FORWARD chains (table ip or ip6 filter) are left to
// the iptables binaries (package iptables' Accepts, which also knows
// Docker's DOCKER-USER): iptables-nft cannot read rules in its tables
// that it did not write.

// Others is what other programs keep on the forward hook that berth's
// accept rules over netlink leave alone.
type Others struct {
	// Iptables4 and Iptables6 report that iptables-nft's filter table of
	// that family has its FORWARD chain.
	Iptables4, Iptables6 bool
	// Drops4 and Drops6 report that, besides, that FORWARD chain drops by
	// policy or Docker's DOCKER-USER chain is there: berth's accept rules
	// belong in that table.
	Drops4, Drops6 bool
	// Marks4 and Marks6 count, by comment, the rules marked as berth's in
	// the chain of that table where berth's accept rules belong
	// (DOCKER-USER when FORWARD jumps there, else FORWARD): with Drops,
	// what is there of them, read without the iptables binaries.
	Marks4, Marks6 map[string]int
}

// iptablesTables are the tables iptables-nft makes.
var iptablesTables = map[string]bool{"filter": true, "mangle": true, "raw": true, "security": true}

// iptablesChain reports whether ch is iptables-nft's built-in FORWARD
// chain of one of its tables.
func iptablesChain(ch *nftables.Chain) bool {
	f := ch.Table.Family
	return (f == nftables.TableFamilyIPv4 || f == nftables.TableFamilyIPv6) && iptablesTables[ch.Table.Name] && ch.Name == "FORWARD"
}

// forwardChains returns the base chains of chains on the forward hook in
// tables of family ip, ip6 or inet that are neither berth's nor
// iptables-nft's, and what iptables-nft has there.
func forwardChains(chains []*nftables.Chain) (out []*nftables.Chain, others Others) {
	var docker4, docker6 bool
	for _, ch := range chains {
		if ch.Table == nil {
			continue
		}
		f := ch.Table.Family
		if ch.Name == "DOCKER-USER" && ch.Table.Name == "filter" {
			docker4 = docker4 || f == nftables.TableFamilyIPv4
			docker6 = docker6 || f == nftables.TableFamilyIPv6
		}
		if ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookForward {
			continue
		}
		switch {
		case iptablesChain(ch):
			if ch.Table.Name == "filter" && f == nftables.TableFamilyIPv4 {
				others.Iptables4, others.Drops4 = true, others.Drops4 || dropsByPolicy(ch)
			}
			if ch.Table.Name == "filter" && f == nftables.TableFamilyIPv6 {
				others.Iptables6, others.Drops6 = true, others.Drops6 || dropsByPolicy(ch)
			}
		case f == nftables.TableFamilyINet && ch.Table.Name == TableName:
		case f == nftables.TableFamilyIPv4 || f == nftables.TableFamilyIPv6 || f == nftables.TableFamilyINet:
			out = append(out, ch)
		}
	}
	others.Drops4 = others.Iptables4 && (others.Drops4 || docker4)
	others.Drops6 = others.Iptables6 && (others.Drops6 || docker6)
	return out, others
}

// dropsByPolicy reports whether a base chain of type filter drops what
// no rule of it accepts.
func dropsByPolicy(ch *nftables.Chain) bool {
	return ch.Type == nftables.ChainTypeFilter && ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop
}

// acceptExprs returns the expressions of n's accept rules in a table of
// family tf: for the subnets of the families the table sees.
func acceptExprs(tf nftables.TableFamily, n firewall.NetworkRules) [][]expr.Any {
	var out [][]expr.Any
	for _, s := range n.Subnets {
		s = s.Masked()
		f := family(s.Addr())
		if tf == nftables.TableFamilyIPv4 && f != unix.NFPROTO_IPV4 || tf == nftables.TableFamilyIPv6 && f != unix.NFPROTO_IPV6 {
			continue
		}
		var toBridge, fromBridge []expr.Any
		if n.Bridge != "" {
			toBridge, fromBridge = matchIf(expr.MetaKeyOIFNAME, n.Bridge, false), matchIf(expr.MetaKeyIIFNAME, n.Bridge, false)
		}
		out = append(out,
			rule(matchFamily(f), toBridge, matchPrefix(s, false, false), matchCtEstablished(), one(verdictAccept)),
			rule(matchFamily(f), toBridge, matchPrefix(s, false, false), matchCtStatusDNAT(), one(verdictAccept)),
			rule(matchFamily(f), fromBridge, matchPrefix(s, true, false), one(verdictAccept)),
		)
	}
	return out
}

func markData(id string) []byte {
	return userdata.AppendString(nil, userdata.TypeComment, firewall.Mark(id))
}

// listForward lists the forward chains of other tables (see
// forwardChains), and counts berth's marks in iptables-nft's where its
// accept rules belong there.
func listForward(c *nftables.Conn) ([]*nftables.Chain, Others, error) {
	chains, err := c.ListChains()
	if err != nil {
		return nil, Others{}, fmt.Errorf("list chains: %w", err)
	}
	out, others := forwardChains(chains)
	if others.Drops4 {
		if others.Marks4, err = iptablesMarks(c, chains, nftables.TableFamilyIPv4); err != nil {
			return nil, others, err
		}
	}
	if others.Drops6 {
		if others.Marks6, err = iptablesMarks(c, chains, nftables.TableFamilyIPv6); err != nil {
			return nil, others, err
		}
	}
	return out, others, nil
}

// iptablesMarks counts the marks of the rules in the chain of
// iptables-nft's filter table of family f where berth's accept rules
// belong: DOCKER-USER when FORWARD jumps to it, else FORWARD when it
// drops by policy (else none).
func iptablesMarks(c *nftables.Conn, chains []*nftables.Chain, f nftables.TableFamily) (map[string]int, error) {
	var fwd, user *nftables.Chain
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Family == f && ch.Table.Name == "filter" {
			switch ch.Name {
			case "FORWARD":
				fwd = ch
			case "DOCKER-USER":
				user = ch
			}
		}
	}
	out := map[string]int{}
	if fwd == nil {
		return out, nil
	}
	rules, err := c.GetRules(fwd.Table, fwd)
	if err != nil {
		return nil, fmt.Errorf("list chain FORWARD of table filter: %w", err)
	}
	switch {
	case user != nil && slices.ContainsFunc(rules, func(r *nftables.Rule) bool { return jumpsTo(r, user.Name) }):
		if rules, err = c.GetRules(user.Table, user); err != nil {
			return nil, fmt.Errorf("list chain DOCKER-USER of table filter: %w", err)
		}
	case !dropsByPolicy(fwd):
		return out, nil
	}
	for _, r := range rules {
		if m := mark(r); m != "" {
			out[m]++
		}
	}
	return out, nil
}

// jumpsTo reports whether a rule jumps or goes to the chain.
func jumpsTo(r *nftables.Rule, chain string) bool {
	for _, e := range r.Exprs {
		if v, ok := e.(*expr.Verdict); ok && (v.Kind == expr.VerdictJump || v.Kind == expr.VerdictGoto) && v.Chain == chain {
			return true
		}
	}
	return false
}

// mark returns a rule's comment: its own, or that of an iptables comment
// match (which iptables-nft writes); "" when it has none.
func mark(r *nftables.Rule) string {
	if c := comment(r); c != "" {
		return c
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

// marks counts the rules of a chain by their comment, and returns them.
func marks(c *nftables.Conn, ch *nftables.Chain) (map[string]int, []*nftables.Rule, error) {
	rules, err := c.GetRules(ch.Table, ch)
	if err != nil {
		return nil, nil, fmt.Errorf("list chain %s of table %s: %w", ch.Name, ch.Table.Name, err)
	}
	n := map[string]int{}
	for _, r := range rules {
		n[comment(r)]++
	}
	return n, rules, nil
}

// EnsureAccepts makes sure that every forward chain of another table that
// drops by policy holds the accept rules of nets (see above): a network
// whose rules there are not all in place gets them anew, at the end of the
// chain. All changes go in one batch. It also reports what iptables-nft
// has on the forward hook, which is not changed here.
func (d *Driver) EnsureAccepts(nets []firewall.NetworkRules) (Others, error) {
	var others Others
	err := d.changing(func(lc *conn) error {
		chains, o, err := listForward(lc.Conn)
		others = o
		if err != nil {
			return err
		}
		queued := false
		for _, ch := range chains {
			if !dropsByPolicy(ch) {
				continue
			}
			q, err := queueAccepts(lc.Conn, ch, nets)
			if err != nil {
				return err
			}
			queued = queued || q
		}
		if !queued {
			return nil
		}
		if err := lc.commit(); err != nil {
			return fmt.Errorf("add accept rules to other tables' forward chains: %w", err)
		}
		return nil
	})
	return others, err
}

// queueAccepts queues, for each network of nets whose accept rules in ch
// are not all there, the deletion of those that are and the rules anew.
func queueAccepts(c *nftables.Conn, ch *nftables.Chain, nets []firewall.NetworkRules) (bool, error) {
	have, rules, err := marks(c, ch)
	if err != nil {
		return false, err
	}
	queued := false
	for _, n := range nets {
		want := acceptExprs(ch.Table.Family, n)
		mark := firewall.Mark(n.ID)
		if have[mark] == len(want) {
			continue
		}
		for _, r := range rules {
			if comment(r) == mark {
				if err := c.DelRule(r); err != nil {
					return false, fmt.Errorf("queue delete rule %d: %w", r.Handle, err)
				}
			}
		}
		for _, e := range want {
			c.AddRule(&nftables.Rule{Table: ch.Table, Chain: ch, Exprs: e, UserData: markData(n.ID)})
		}
		queued = true
	}
	return queued, nil
}

// AcceptsIntact reports whether every forward chain of another table that
// drops by policy holds all the accept rules of nets, and what
// iptables-nft has on the forward hook.
func (d *Driver) AcceptsIntact(nets []firewall.NetworkRules) (bool, Others, error) {
	lc, err := d.conn()
	if err != nil {
		return false, Others{}, err
	}
	defer lc.close()
	chains, others, err := listForward(lc.Conn)
	if err != nil {
		return false, others, err
	}
	for _, ch := range chains {
		if !dropsByPolicy(ch) {
			continue
		}
		have, _, err := marks(lc.Conn, ch)
		if err != nil {
			return false, others, err
		}
		for _, n := range nets {
			if have[firewall.Mark(n.ID)] != len(acceptExprs(ch.Table.Family, n)) {
				return false, others, nil
			}
		}
	}
	return true, others, nil
}

// RemoveAccepts deletes, from every forward chain of another table
// (whatever its policy now), the rules marked as the accept rules of the
// networks with these IDs; with all, every rule marked as berth's. It
// reports what iptables-nft has on the forward hook.
func (d *Driver) RemoveAccepts(ids []string, all bool) (Others, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[firewall.Mark(id)] = true
	}
	var others Others
	err := d.changing(func(lc *conn) error {
		chains, o, err := listForward(lc.Conn)
		others = o
		if err != nil {
			return err
		}
		queued := false
		for _, ch := range chains {
			_, rules, err := marks(lc.Conn, ch)
			if err != nil {
				return err
			}
			for _, r := range rules {
				cm := comment(r)
				if _, ours := firewall.MarkedID(cm); ours && (all || want[cm]) {
					if err := lc.DelRule(r); err != nil {
						return fmt.Errorf("queue delete rule %d: %w", r.Handle, err)
					}
					queued = true
				}
			}
		}
		if !queued {
			return nil
		}
		if err := lc.commit(); err != nil {
			return fmt.Errorf("remove accept rules from other tables' forward chains: %w", err)
		}
		return nil
	})
	return others, err
}

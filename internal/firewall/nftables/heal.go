package nftables

import (
	"fmt"

	"github.com/google/nftables"

	"github.com/berthnet/berth/internal/firewall"
)

// Healing: rules damaged from outside (`nft flush ruleset`, a flushed chain
// or map, a deleted element) are found by Damage and mended by Repair,
// which rebuilds every chain that is not as berth would make it and adds
// back every missing set and map element, in one batch (or as many as
// the elements need).

// chainState is what one chain of the table holds: its base rules and,
// per network ID, the number of tagged rules.
type chainState struct {
	base int
	nets map[string]int
}

// want is what the table must hold for nets and ports.
func (o *objects) want(nets []firewall.NetworkRules) map[*nftables.Chain]chainState {
	out := map[*nftables.Chain]chainState{}
	get := func(ch *nftables.Chain) chainState {
		cs, ok := out[ch]
		if !ok {
			cs = chainState{nets: map[string]int{}}
		}
		return cs
	}
	for _, ch := range o.chains() {
		out[ch] = get(ch)
	}
	for _, r := range o.baseRules() {
		cs := get(r.chain)
		cs.base++
		out[r.chain] = cs
	}
	for _, n := range nets {
		for _, r := range o.networkRules(n) {
			cs := get(r.chain)
			cs.nets[n.ID]++
			out[r.chain] = cs
		}
	}
	return out
}

// chains lists the table's chains.
func (o *objects) chains() []*nftables.Chain {
	return []*nftables.Chain{o.hostports, o.isolation, o.prerouting, o.output, o.postrouting, o.forward}
}

// have reads what chain ch holds; ok is false when it cannot be listed
// (it is missing).
func (o *objects) have(c *nftables.Conn, ch *nftables.Chain) (cs chainState, ok bool) {
	rules, err := c.GetRules(o.table, ch)
	if err != nil {
		return cs, false
	}
	cs.nets = map[string]int{}
	for _, r := range rules {
		if id := ruleTag(r); id != "" {
			cs.nets[id]++
		} else {
			cs.base++
		}
	}
	return cs, true
}

// sameChain reports whether got holds what want asks for (rules of
// networks not in want are ignored: they are another call's business).
func sameChain(got, want chainState) bool {
	if got.base != want.base {
		return false
	}
	for id, n := range want.nets {
		if got.nets[id] != n {
			return false
		}
	}
	return true
}

// damaged returns the chains that are not as nets need them, with what
// is wrong with each (chainDamage); table is false when the table itself
// is missing.
func (o *objects) damaged(c *nftables.Conn, nets []firewall.NetworkRules) (table bool, chains []*nftables.Chain, findings []string) {
	if _, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet); err != nil {
		return false, o.chains(), []string{"table inet " + TableName + " missing"}
	}
	want := o.want(nets)
	for _, ch := range o.chains() {
		got, ok := o.have(c, ch)
		if ok && sameChain(got, want[ch]) {
			continue
		}
		chains = append(chains, ch)
		findings = append(findings, chainDamage(ch.Name, got, ok, want[ch]))
	}
	return true, chains, findings
}

// chainDamage describes chain name holding got (listed false: it could
// not be listed) where want is due: "chain forward missing", "chain
// forward flushed", "chain forward: 2 of 6 rules missing", or "chain
// forward altered" (as many rules or more, but not the same).
func chainDamage(name string, got chainState, listed bool, want chainState) string {
	if !listed {
		return "chain " + name + " missing"
	}
	total, missing := want.base, max(want.base-got.base, 0)
	ours := got.base
	for id, n := range want.nets {
		total += n
		missing += max(n-got.nets[id], 0)
		ours += got.nets[id]
	}
	switch {
	case ours == 0 && total > 0:
		return "chain " + name + " flushed"
	case missing > 0:
		return fmt.Sprintf("chain %s: %d of %d rules missing", name, missing, total)
	}
	return "chain " + name + " altered"
}

// missingElements returns the set and map elements nets and ports need
// that the table does not hold (all of them when a set is missing, which
// gone lists).
func (o *objects) missingElements(c *nftables.Conn, nets []firewall.NetworkRules, ports []firewall.PortForward) (out map[*nftables.Set][]nftables.SetElement, gone map[*nftables.Set]bool) {
	need := map[*nftables.Set][]nftables.SetElement{}
	for _, n := range nets {
		for _, set := range o.networkSets(n) {
			need[set] = append(need[set], nftables.SetElement{Key: ifname(n.Bridge)})
		}
	}
	for _, pf := range ports {
		for set, els := range o.forwardElements(pf) {
			need[set] = append(need[set], els...)
		}
	}
	out, gone = map[*nftables.Set][]nftables.SetElement{}, map[*nftables.Set]bool{}
	for set, els := range need {
		cur, err := c.GetSetElements(set)
		if err != nil {
			out[set], gone[set] = els, true
			continue
		}
		have := map[string]bool{}
		for _, e := range cur {
			have[string(e.Key)+"\x00"+string(e.Val)] = true
		}
		for _, e := range els {
			if !have[string(e.Key)+"\x00"+string(e.Val)] {
				out[set] = append(out[set], e)
			}
		}
	}
	return out, gone
}

// elementDamage describes n elements missing from the set or map called
// name (gone: the set itself is missing): "map pf4any: 2 port forwards
// missing", "set bridges: 1 element missing", "map pf4 missing (3 port
// forwards)".
func elementDamage(name string, isMap, gone bool, n int) string {
	kind, what := "set", "element"
	if isMap {
		kind, what = "map", "port forward"
	}
	if n != 1 {
		what += "s"
	}
	if gone {
		return fmt.Sprintf("%s %s missing (%d %s)", kind, name, n, what)
	}
	return fmt.Sprintf("%s %s: %d %s missing", kind, name, n, what)
}

// allSets are the table's sets and maps, in the order damage is told.
func (o *objects) allSets() []*nftables.Set {
	return []*nftables.Set{o.bridges, o.isolated, o.pf4, o.pf4any, o.pf6, o.pf6any}
}

// Damage implements firewall.Healer: what of the rules of nets and the
// forwards of ports the table lacks. A missing table is one finding;
// otherwise each damaged chain is one (chainDamage) and each set or map
// with missing elements one (elementDamage).
func (d *Driver) Damage(nets []firewall.NetworkRules, ports []firewall.PortForward) ([]string, error) {
	lc, err := d.conn()
	if err != nil {
		return nil, err
	}
	defer lc.close()
	c := lc.Conn
	o := newObjects()
	exists, _, findings := o.damaged(c, nets)
	if !exists {
		return findings, nil
	}
	missing, gone := o.missingElements(c, nets, ports)
	for _, set := range o.allSets() {
		if n := len(missing[set]); n > 0 {
			findings = append(findings, elementDamage(set.Name, set.IsMap, gone[set], n))
		}
	}
	return findings, nil
}

// Repair implements firewall.Healer: it makes sure of the table, its
// chains and sets, rebuilds each damaged chain (flushed, then its base
// rules and the rules of nets, in order) and adds the missing elements,
// in one batch, or in batches of elemsPerBatch elements when there are
// more (the first batch carries the chains). nets must be every network with containers: a rebuilt
// chain keeps no other network's rules.
func (d *Driver) Repair(nets []firewall.NetworkRules, ports []firewall.PortForward) error {
	return d.changing(func(lc *conn) error { return d.repair(lc, nets, ports) })
}

func (d *Driver) repair(lc *conn, nets []firewall.NetworkRules, ports []firewall.PortForward) error {
	c := lc.Conn
	o := newObjects()
	exists, damaged, _ := o.damaged(c, nets)
	missing, _ := o.missingElements(c, nets, ports)
	if !exists {
		if err := o.createBase(c); err != nil {
			return err
		}
		for _, n := range nets {
			if err := o.queueNetwork(c, n); err != nil {
				return err
			}
		}
	} else if err := o.rebuild(c, damaged, nets); err != nil {
		return err
	}
	// The chains go with the first elements; many elements (a container
	// with thousands of ports) need more batches (see batches).
	parts := batches(o.allSets(), missing)
	if len(parts) == 0 {
		parts = [][]setElems{nil}
	}
	for _, b := range parts {
		if err := queue(c, b, c.SetAddElements); err != nil {
			return fmt.Errorf("queue missing elements: %w", err)
		}
		if err := lc.commit(); err != nil {
			return fmt.Errorf("repair table inet %s: %w", TableName, err)
		}
	}
	return nil
}

// rebuild queues the re-creation of the chains and sets (a no-op for those
// that exist) and the rebuilding of each damaged chain.
func (o *objects) rebuild(c *nftables.Conn, damaged []*nftables.Chain, nets []firewall.NetworkRules) error {
	for _, ch := range o.chains() {
		c.AddChain(ch)
	}
	for _, s := range []*nftables.Set{o.pf4, o.pf4any, o.pf6, o.pf6any, o.isolated, o.bridges} {
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("add set %s: %w", s.Name, err)
		}
	}
	for _, ch := range damaged {
		c.FlushChain(ch)
		for _, r := range o.baseRules() {
			if r.chain == ch {
				c.AddRule(&nftables.Rule{Table: o.table, Chain: ch, Exprs: r.exprs, UserData: baseTag()})
			}
		}
		for _, n := range nets {
			for _, r := range o.networkRules(n) {
				if r.chain != ch {
					continue
				}
				nr := &nftables.Rule{Table: o.table, Chain: ch, Exprs: r.exprs, UserData: tag(n.ID)}
				if r.insert {
					c.InsertRule(nr)
				} else {
					c.AddRule(nr)
				}
			}
		}
	}
	return nil
}

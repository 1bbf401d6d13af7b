package iptables

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/network"
)

// planner turns wanted changes into one iptables-restore --noflush script.
// It works on a copy of the current ruleset and applies each change there
// too, so it skips rules that are already present, deletes only rules that
// exist, declares only chains that do not exist yet (in --noflush mode,
// declaring an existing chain flushes it) and knows when a chain is empty.
type planner struct {
	rs      *ruleset
	scripts map[string]*tableScript
	// added and created record what the script adds, for undo.
	added   []rule
	created []rule // table and chain only
}

// tableScript is the part of the script for one table.
type tableScript struct {
	declare []string // ":CHAIN - [0:0]" lines, which must come first
	cmds    []string
}

func newPlanner(current *ruleset) *planner {
	return &planner{rs: current.clone(), scripts: map[string]*tableScript{}}
}

func (p *planner) script(tbl string) *tableScript {
	s := p.scripts[tbl]
	if s == nil {
		s = &tableScript{}
		p.scripts[tbl] = s
	}
	return s
}

// ensureChain creates a chain unless it exists.
func (p *planner) ensureChain(tbl, name string) *chain {
	t := p.rs.table(tbl)
	if c := t.chains[name]; c != nil {
		return c
	}
	c := &chain{name: name}
	t.chains[name] = c
	p.script(tbl).declare = append(p.script(tbl).declare, ":"+name+" - [0:0]")
	p.created = append(p.created, rule{table: tbl, chain: name})
	return c
}

// add adds a rule unless its chain already holds it, creating its chain
// and the chain it jumps to when needed.
func (p *planner) add(r rule) {
	spec := normalize(r.spec)
	c := p.ensureChain(r.table, r.chain)
	if t := jumpTarget(spec); strings.HasPrefix(t, chainPrefix) {
		p.ensureChain(r.table, t)
	}
	if c.has(spec) {
		return
	}
	if r.insert > 0 {
		pos := min(r.insert, len(c.rules)+1)
		c.rules = append(c.rules[:pos-1], append([]string{spec}, c.rules[pos-1:]...)...)
		p.script(r.table).cmds = append(p.script(r.table).cmds, fmt.Sprintf("-I %s %d %s", r.chain, pos, spec))
	} else {
		c.rules = append(c.rules, spec)
		p.script(r.table).cmds = append(p.script(r.table).cmds, fmt.Sprintf("-A %s %s", r.chain, spec))
	}
	r.spec = spec
	p.added = append(p.added, r)
}

// del deletes a rule if it exists.
func (p *planner) del(tbl, chainName, spec string) {
	spec = normalize(spec)
	c := p.rs.chain(tbl, chainName)
	if c == nil {
		return
	}
	i := c.index(spec)
	if i < 0 {
		return
	}
	c.rules = append(c.rules[:i], c.rules[i+1:]...)
	p.script(tbl).cmds = append(p.script(tbl).cmds, fmt.Sprintf("-D %s %s", chainName, spec))
}

// deleteChainIfUnused deletes a user chain that has no rules and that no
// rule jumps to.
func (p *planner) deleteChainIfUnused(tbl, name string) {
	t := p.rs.tables[tbl]
	if t == nil {
		return
	}
	c := t.chains[name]
	if c == nil || c.builtin || len(c.rules) > 0 || t.referenced(name) {
		return
	}
	delete(t.chains, name)
	p.script(tbl).cmds = append(p.script(tbl).cmds, "-X "+name)
}

// empty reports whether the plan changes nothing.
func (p *planner) empty() bool {
	for _, s := range p.scripts {
		if len(s.declare)+len(s.cmds) > 0 {
			return false
		}
	}
	return true
}

// restoreScript renders the plan as input for iptables-restore --noflush:
// one section per table that changes, filter before nat.
func (p *planner) restoreScript() []byte {
	var b strings.Builder
	for _, tn := range sortedTables(p.scripts) {
		s := p.scripts[tn]
		if len(s.declare)+len(s.cmds) == 0 {
			continue
		}
		fmt.Fprintf(&b, "*%s\n", tn)
		for _, l := range s.declare {
			b.WriteString(l + "\n")
		}
		for _, l := range s.cmds {
			b.WriteString(l + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	return []byte(b.String())
}

// undoScript renders a script that removes what the plan adds: the added
// rules in reverse order, then the created chains.
func (p *planner) undoScript() []byte {
	undo := map[string]*tableScript{}
	get := func(tbl string) *tableScript {
		if undo[tbl] == nil {
			undo[tbl] = &tableScript{}
		}
		return undo[tbl]
	}
	for i := len(p.added) - 1; i >= 0; i-- {
		r := p.added[i]
		get(r.table).cmds = append(get(r.table).cmds, fmt.Sprintf("-D %s %s", r.chain, r.spec))
	}
	for i := len(p.created) - 1; i >= 0; i-- {
		r := p.created[i]
		get(r.table).cmds = append(get(r.table).cmds, "-X "+r.chain)
	}
	var b strings.Builder
	for _, tn := range sortedTables(undo) {
		fmt.Fprintf(&b, "*%s\n%sCOMMIT\n", tn, strings.Join(undo[tn].cmds, "\n")+"\n")
	}
	return []byte(b.String())
}

// sortedTables orders table names as iptables-save does for the tables
// berth uses: filter, then nat, then the rest by name.
func sortedTables[T any](m map[string]T) []string {
	rank := func(s string) int {
		switch s {
		case tableFilter:
			return 0
		case tableNAT:
			return 1
		}
		return 2
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if rank(out[i]) != rank(out[j]) {
			return rank(out[i]) < rank(out[j])
		}
		return out[i] < out[j]
	})
	return out
}

// sameNetwork reports whether a port forward belongs to the network.
func sameNetwork(pf firewall.PortForward, n firewall.NetworkRules) bool {
	if pf.NetworkID != "" && n.ID != "" {
		return pf.NetworkID == n.ID
	}
	return pf.NetworkName == n.Name
}

// targetOf returns the container address of pf in family f.
func targetOf(pf firewall.PortForward, f family) netip.Addr {
	if f == ipv6 {
		return pf.IPv6
	}
	return pf.IPv4
}

// containerSubnet finds the subnet of family f that holds the container
// address of pf: first among the subnets of the given networks, then among
// the subnets the ruleset masquerades for the network (POSTROUTING
// -s S -j NETAVARK-<HASH>), then among the hairpin rules of its DNAT chain.
func containerSubnet(rs *ruleset, f family, pf firewall.PortForward, nets []firewall.NetworkRules) (netip.Prefix, bool) {
	ip := targetOf(pf, f)
	for _, n := range nets {
		if !sameNetwork(pf, n) {
			continue
		}
		for _, s := range subnets(n, f) {
			if s.Contains(ip) {
				return s, true
			}
		}
	}
	if c := rs.chain(tableNAT, chainPostrouting); c != nil {
		hash := networkChain(pf.NetworkName)
		for _, r := range c.rules {
			if jumpTarget(r) != hash {
				continue
			}
			if s, ok := sourcePrefix(r); ok && s.Contains(ip) {
				return s, true
			}
		}
	}
	if c := rs.chain(tableNAT, dnatChain(pf.NetworkName)); c != nil {
		for _, r := range c.rules {
			if jumpTarget(r) != chainHostportSetmark {
				continue
			}
			if s, ok := sourcePrefix(r); ok && s.Bits() < ip.BitLen() && s.Contains(ip) {
				return s, true
			}
		}
	}
	return netip.Prefix{}, false
}

// involved reports whether Setup or Teardown of these networks and ports
// has anything to do in family f.
func involved(f family, nets []firewall.NetworkRules, ports []firewall.PortForward) bool {
	for _, n := range nets {
		if len(subnets(n, f)) > 0 {
			return true
		}
	}
	for _, pf := range ports {
		if len(mappingsOf(pf, f)) > 0 {
			return true
		}
	}
	return false
}

// planSetup plans the Setup of networks and port forwards in family f, in
// netavark's order: for each network its own rules, the shared port-forward
// rules, its DNS redirect and the ports published on it; then ports on
// networks not in nets (which must have been set up before).
func planSetup(current *ruleset, f family, nets []firewall.NetworkRules, ports []firewall.PortForward) (*planner, error) {
	p := newPlanner(current)
	strict3 := p.rs.chain(tableFilter, chainIsolation3) != nil
	for _, n := range nets {
		if n.Isolation == network.IsolateStrict && len(subnets(n, f)) > 0 {
			strict3 = true
		}
	}
	done := make([]bool, len(ports))
	addPorts := func(i int, nets []firewall.NetworkRules) error {
		pf := ports[i]
		done[i] = true
		if len(mappingsOf(pf, f)) == 0 {
			return nil
		}
		if err := findConflict(current, f, pf); err != nil {
			return err
		}
		s, ok := containerSubnet(p.rs, f, pf, nets)
		if !ok {
			return fmt.Errorf("find subnet of %s on network %s: no %s subnet holds it", targetOf(pf, f), pf.NetworkName, f)
		}
		for _, r := range hostportRules() {
			p.add(r)
		}
		for _, r := range portRules(pf, f, s) {
			p.add(r)
		}
		return nil
	}
	for _, n := range nets {
		if len(subnets(n, f)) == 0 {
			continue
		}
		if n.Isolation != network.IsolateNone && n.Isolation != network.IsolateTrue && n.Isolation != network.IsolateStrict {
			return nil, fmt.Errorf("set up network %s: unknown isolation mode %d", n.Name, n.Isolation)
		}
		for _, r := range networkRules(n, f, strict3) {
			p.add(r)
		}
		for _, r := range hostportRules() {
			p.add(r)
		}
		for _, r := range dnsRules(n, f) {
			p.add(r)
		}
		for i, pf := range ports {
			if !done[i] && sameNetwork(pf, n) {
				if err := addPorts(i, nets); err != nil {
					return nil, err
				}
			}
		}
	}
	for i := range ports {
		if !done[i] {
			if err := addPorts(i, nets); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

// planTeardown plans the Teardown in family f: the rules of each port
// forward, then for each network in complete its own rules and DNS
// redirect; the FORWARD jump to NETAVARK_ISOLATION_1 once no isolated
// network is left; and the network's NETAVARK-<HASH> and NETAVARK-DN-<HASH>
// chains once they are empty. Shared chains and jumps stay, as in netavark.
func planTeardown(current *ruleset, f family, ports []firewall.PortForward, complete []firewall.NetworkRules) *planner {
	p := newPlanner(current)
	for _, pf := range ports {
		if len(mappingsOf(pf, f)) == 0 {
			continue
		}
		s, _ := containerSubnet(p.rs, f, pf, complete) // without it, the hairpin rule cannot be named
		for _, r := range portRules(pf, f, s) {
			p.del(r.table, r.chain, r.spec)
		}
	}
	var later []rule
	for _, n := range complete {
		rules := append(networkRules(n, f, true), dnsRules(n, f)...)
		for _, r := range rules {
			switch r.policy {
			case perNetwork:
				p.del(r.table, r.chain, r.spec)
			case whenTargetEmpty:
				later = append(later, r)
			}
		}
	}
	for _, r := range later {
		if c := p.rs.chain(r.table, jumpTarget(r.spec)); c == nil || len(c.rules) == 0 {
			p.del(r.table, r.chain, r.spec)
		}
	}
	for _, n := range complete {
		p.deleteChainIfUnused(tableNAT, networkChain(n.Name))
		p.deleteChainIfUnused(tableNAT, dnatChain(n.Name))
	}
	return p
}

// planReset plans the removal of everything netavark-like: every rule that
// jumps to a chain named NETAVARK*, then every such chain.
func planReset(current *ruleset) *planner {
	p := newPlanner(current)
	for _, tn := range sortedTables(p.rs.tables) {
		t := p.rs.tables[tn]
		chains := t.sortedChains()
		for _, c := range chains {
			if strings.HasPrefix(c.name, chainPrefix) {
				continue
			}
			for _, r := range append([]string(nil), c.rules...) {
				if strings.HasPrefix(jumpTarget(r), chainPrefix) {
					p.del(tn, c.name, r)
				}
			}
		}
		for _, c := range chains {
			if strings.HasPrefix(c.name, chainPrefix) && len(c.rules) > 0 {
				c.rules = nil
				p.script(tn).cmds = append(p.script(tn).cmds, "-F "+c.name)
			}
		}
		for _, c := range chains {
			if strings.HasPrefix(c.name, chainPrefix) {
				p.deleteChainIfUnused(tn, c.name)
			}
		}
	}
	return p
}

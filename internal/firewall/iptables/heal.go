package iptables

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/berthnet/berth/internal/firewall"
)

// Healing: rules damaged from outside (`iptables -F`, `iptables -t nat
// -F`, a deleted chain or rule, a firewalld reload on its iptables
// backend) are found by Damage and mended by Repair. What berth's rules
// are is what Setup would add to a ruleset that has none (wanted), each
// rule known by its whole text in iptables-save form: the NETAVARK chain
// it is in or jumps to, and for the jumps from built-in chains and the
// port forwards, netavark's comment ("netavark firewall plugin rules",
// "dnat name: NET id: CONTAINER"). A rule another program wrote the same
// way counts as present, so Repair never adds a second copy.

var (
	_ firewall.Healer = (*Driver)(nil)
	_ firewall.Polled = (*Driver)(nil)
)

// wanted returns the rules of nets and ports in family f, in the order
// Setup adds them. NETAVARK_ISOLATION_3 is in use when cur has it, as
// Setup decides.
func wanted(cur *ruleset, f family, nets []firewall.NetworkRules, ports []firewall.PortForward) ([]rule, error) {
	base := newRuleset()
	if cur.chain(tableFilter, chainIsolation3) != nil {
		base.table(tableFilter).chains[chainIsolation3] = &chain{name: chainIsolation3}
	}
	p, err := planSetup(base, f, nets, ports)
	if err != nil {
		return nil, err
	}
	return p.added, nil
}

// chainKey names a chain of a table.
type chainKey struct{ table, chain string }

// damage describes what of want the ruleset rs of family f lacks: per
// chain, "ipv4 nat chain NETAVARK-DN-… missing" (the chain does not
// exist), "… flushed" (it holds no rule at all) or "…: 2 of 6 rules
// missing"; then "ipv4: 2 port forwards missing" for the DNAT rules
// among them. Chains are told in the order want first names them.
func damage(rs *ruleset, f family, want []rule) []string {
	var order []chainKey
	total, missing := map[chainKey]int{}, map[chainKey]int{}
	forwards := 0
	for _, r := range want {
		k := chainKey{r.table, r.chain}
		if _, seen := total[k]; !seen {
			order = append(order, k)
		}
		total[k]++
		if c := rs.chain(r.table, r.chain); c == nil || !c.has(r.spec) {
			missing[k]++
			if strings.HasPrefix(r.chain, dnatPrefix) && jumpTarget(r.spec) == "DNAT" {
				forwards++
			}
		}
	}
	var out []string
	for _, k := range order {
		if missing[k] == 0 {
			continue
		}
		name := fmt.Sprintf("%s %s chain %s", f, k.table, k.chain)
		switch c := rs.chain(k.table, k.chain); {
		case c == nil:
			out = append(out, name+" missing")
		case len(c.rules) == 0:
			out = append(out, name+" flushed")
		default:
			out = append(out, fmt.Sprintf("%s: %d of %d rules missing", name, missing[k], total[k]))
		}
	}
	if forwards > 0 {
		out = append(out, fmt.Sprintf("%s: %d port forward%s missing", f, forwards, plural(forwards)))
	}
	return out
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// planRepair plans adding the rules of want that rs lacks, none twice.
// A rule that goes at a position (the jumps from built-in chains, the
// isolation drops) goes there, as in Setup; any other goes before the
// next rule of want in its chain that is present, so a chain berth fills
// in order (a network's DNAT chain: the hairpin and localhost marks
// before the DNAT) gets that order back, and rules of others stay where
// they are.
func planRepair(rs *ruleset, want []rule) *planner {
	p := newPlanner(rs)
	for i, r := range want {
		c := p.rs.chain(r.table, r.chain)
		if c != nil && c.has(r.spec) {
			continue
		}
		if c != nil && r.insert == 0 && !c.builtin {
			if pos := nextPresent(c, want[i+1:], r); pos >= 0 {
				r.insert = pos + 1
			}
		}
		p.add(r)
	}
	return p
}

// nextPresent returns the index in c of the first rule of later that is
// in r's chain and in c, or -1.
func nextPresent(c *chain, later []rule, r rule) int {
	for _, n := range later {
		if n.table == r.table && n.chain == r.chain {
			if i := c.index(n.spec); i >= 0 {
				return i
			}
		}
	}
	return -1
}

// Damage implements firewall.Healer: what of the rules of nets and ports
// each family's ruleset lacks (damage).
func (d *Driver) Damage(nets []firewall.NetworkRules, ports []firewall.PortForward) ([]string, error) {
	var out []string
	for _, f := range families {
		if !involved(f, nets, ports) {
			continue
		}
		rs, err := d.save(f)
		if err != nil {
			return nil, err
		}
		want, err := wanted(rs, f, nets, ports)
		if err != nil {
			return nil, err
		}
		out = append(out, damage(rs, f, want)...)
	}
	return out, nil
}

// Repair implements firewall.Healer: it adds, per family with one
// iptables-restore --noflush, every rule of nets and ports that is
// missing (planRepair). nets and ports need not be complete: nothing is
// removed. An error in one family does not stop the other.
func (d *Driver) Repair(nets []firewall.NetworkRules, ports []firewall.PortForward) error {
	var errs []error
	for _, f := range families {
		if !involved(f, nets, ports) {
			continue
		}
		rs, err := d.save(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		want, err := wanted(rs, f, nets, ports)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p := planRepair(rs, want)
		if p.empty() {
			continue
		}
		if err := d.restore(f, "repair", p.restoreScript()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Unannounced implements firewall.Polled: true when the iptables binaries
// are iptables-legacy's, whose changes the kernel does not announce as
// nftables events (iptables-nft's it does). It asks `iptables-save
// --version` once.
func (d *Driver) Unannounced() bool {
	d.legacyOnce.Do(func() {
		for _, bin := range []string{d.opts.Save, d.opts.Save6} {
			out, err := d.opts.Run(bin, []string{"--version"}, nil)
			if err == nil && legacyVersion(string(out)) {
				d.legacy = true
			}
		}
	})
	return d.legacy
}

// legacyVersion reports whether an `iptables-save --version` line names
// the legacy backend: "iptables-save v1.8.9 (legacy)", where iptables-nft
// says "(nf_tables)". Versions before 1.8 had only the legacy one.
func legacyVersion(v string) bool {
	if strings.Contains(v, "(legacy)") {
		return true
	}
	if strings.Contains(v, "nf_tables") {
		return false
	}
	var major, minor int
	if i := strings.Index(v, " v"); i >= 0 {
		if _, err := fmt.Sscanf(v[i+2:], "%d.%d", &major, &minor); err == nil {
			return major < 1 || major == 1 && minor < 8
		}
	}
	return false
}

// legacyState caches Unannounced.
type legacyState struct {
	legacyOnce sync.Once
	legacy     bool
}

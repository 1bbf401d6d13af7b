package iptables

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthnet/berth/internal/firewall"
)

// healEnv sets up the strict, isolated and open networks of strictInput
// in one call, as a repair plans them, and returns the ruleset's dumps.
func healEnv(t *testing.T) (*fakeKernel, *Driver, []firewall.NetworkRules, []firewall.PortForward, map[family]string) {
	t.Helper()
	k := newFakeKernel()
	d := k.driver(t)
	open, strict, iso, ports := strictInput()
	nets := []firewall.NetworkRules{open, strict, iso}
	must(t, "setup", d.Setup(nets, ports))
	if got, err := d.Damage(nets, ports); err != nil || len(got) > 0 {
		t.Fatalf("Damage after setup = %q, %v", got, err)
	}
	before := map[family]string{}
	for _, f := range families {
		before[f] = k.rs[f].render(tableFilter, tableNAT)
	}
	return k, d, nets, ports, before
}

// flushTable empties every chain of a table, as `iptables -t T -F` does.
func flushTable(rs *ruleset, tbl string) {
	for _, c := range rs.table(tbl).chains {
		c.rules = nil
	}
}

// repaired repairs and checks that the ruleset is as before, that Damage
// finds nothing more and that a second Repair changes nothing.
func repaired(t *testing.T, k *fakeKernel, d *Driver, nets []firewall.NetworkRules, ports []firewall.PortForward, before map[family]string) {
	t.Helper()
	must(t, "repair", d.Repair(nets, ports))
	for _, f := range families {
		if diff := cmp.Diff(before[f], k.rs[f].render(tableFilter, tableNAT)); diff != "" {
			t.Errorf("%s after repair (-before +after):\n%s", f, diff)
		}
	}
	if got, err := d.Damage(nets, ports); err != nil || len(got) > 0 {
		t.Errorf("Damage after repair = %q, %v", got, err)
	}
	n := k.count("iptables-restore") + k.count("ip6tables-restore")
	must(t, "repair again", d.Repair(nets, ports))
	if m := k.count("iptables-restore") + k.count("ip6tables-restore"); m != n {
		t.Errorf("a repair of intact rules ran iptables-restore %d times", m-n)
	}
}

func TestRepairAfterFlushOfFilterAndNAT(t *testing.T) {
	k, d, nets, ports, before := healEnv(t)
	for _, f := range families {
		flushTable(k.rs[f], tableFilter)
		flushTable(k.rs[f], tableNAT)
	}
	got, err := d.Damage(nets, ports)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ipv4 filter chain NETAVARK_FORWARD flushed",
		"ipv4 nat chain " + dnatChain("open1") + " flushed",
		"ipv4: 4 port forwards missing",
		"ipv6 nat chain " + dnatChain("strict1") + " flushed",
		"ipv6: 2 port forwards missing",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("Damage lacks %q: %q", want, got)
		}
	}
	repaired(t, k, d, nets, ports, before)
}

func TestRepairAfterChainsWereDeleted(t *testing.T) {
	k, d, nets, ports, before := healEnv(t)
	// `iptables -t nat -F; iptables -t nat -X`: the NETAVARK chains go.
	nat := k.rs[ipv4].table(tableNAT)
	flushTable(k.rs[ipv4], tableNAT)
	for name := range nat.chains {
		if strings.HasPrefix(name, chainPrefix) {
			delete(nat.chains, name)
		}
	}
	got, err := d.Damage(nets, ports)
	if err != nil {
		t.Fatal(err)
	}
	if want := "ipv4 nat chain " + networkChain("open1") + " missing"; !slices.Contains(got, want) {
		t.Errorf("Damage lacks %q: %q", want, got)
	}
	repaired(t, k, d, nets, ports, before)
}

// One DNAT rule and one hairpin mark deleted from the middle of a
// network's DNAT chain come back in their places; the rule another
// program added to NETAVARK_FORWARD stays where it was.
func TestRepairOfSingleRulesKeepsTheOrder(t *testing.T) {
	k, d, nets, ports, _ := healEnv(t)
	fwd := k.rs[ipv4].chain(tableFilter, chainNetavarkForward)
	fwd.rules = append([]string{"-s 192.0.2.0/24 -j ACCEPT"}, fwd.rules...)
	before := map[family]string{ipv4: k.rs[ipv4].render(tableFilter, tableNAT), ipv6: k.rs[ipv6].render(tableFilter, tableNAT)}
	dn := k.rs[ipv4].chain(tableNAT, dnatChain("open1"))
	dn.rules = slices.Delete(dn.rules, 0, 1)   // the first hairpin mark
	dn.rules = slices.Delete(dn.rules, 1, 2)   // a DNAT
	fwd.rules = slices.Delete(fwd.rules, 1, 2) // a network's accept
	got, err := d.Damage(nets, ports)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ipv4 filter chain NETAVARK_FORWARD: 1 of 6 rules missing",
		"ipv4 nat chain " + dnatChain("open1") + ": 2 of 6 rules missing",
		"ipv4: 1 port forward missing",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Damage (-want +got):\n%s", diff)
	}
	repaired(t, k, d, nets, ports, before)
}

func TestLegacyVersion(t *testing.T) {
	for v, want := range map[string]bool{
		"iptables-save v1.8.9 (legacy)\n":    true,
		"iptables-save v1.8.9 (nf_tables)\n": false,
		"iptables-save v1.6.1\n":             true,
		"iptables-save v1.8.4\n":             false,
		"":                                   false,
	} {
		if got := legacyVersion(v); got != want {
			t.Errorf("legacyVersion(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestUnannounced(t *testing.T) {
	for _, c := range []struct {
		v6   string
		want bool
	}{{"ip6tables-save v1.8.9 (nf_tables)", false}, {"ip6tables-save v1.8.9 (legacy)", true}} {
		k := newFakeKernel()
		d, err := New(Options{Run: func(name string, args []string, stdin []byte) ([]byte, error) {
			if slices.Equal(args, []string{"--version"}) {
				if strings.HasPrefix(name, "ip6") {
					return []byte(c.v6), nil
				}
				return []byte("iptables-save v1.8.9 (nf_tables)"), nil
			}
			return k.run(name, args, stdin)
		}})
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Unannounced(); got != c.want {
			t.Errorf("Unannounced with %q = %v, want %v", c.v6, got, c.want)
		}
	}
}

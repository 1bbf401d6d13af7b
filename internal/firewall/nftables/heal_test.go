package nftables

import (
	"slices"
	"testing"

	"github.com/berthnet/berth/internal/firewall"
)

// healed sets up bridgeA and bridgeB with web's forwards, damages the
// table with damage, and checks that Damage finds what wantDamage says
// and Repair restores the table exactly (same chains in the same order,
// same elements).
func healed(t *testing.T, damage func(k *fakeKernel), wantDamage ...string) *fakeKernel {
	t.Helper()
	k := newFakeKernel(t)
	d := k.driver()
	nets := []firewall.NetworkRules{bridgeA, bridgeB}
	ports := []firewall.PortForward{web}
	if err := d.Setup(nets, ports); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Damage(nets, ports); err != nil || len(got) > 0 {
		t.Fatalf("Damage after setup = %q, %v", got, err)
	}
	before := map[string][]string{}
	for _, ch := range newObjects().chains() {
		before[ch.Name] = k.chain(ch.Name)
	}
	elems := map[string][]string{}
	for _, s := range []string{"pf4", "pf4any", "pf6any", "bridges", "isolated"} {
		elems[s] = k.set(s)
	}
	damage(k)
	if got, err := d.Damage(nets, ports); err != nil || !slices.Equal(got, wantDamage) {
		t.Fatalf("Damage = %q, %v; want %q", got, err, wantDamage)
	}
	if err := d.Repair(nets, ports); err != nil {
		t.Fatal(err)
	}
	for name, want := range before {
		if got := k.chain(name); !slices.Equal(got, want) {
			t.Errorf("chain %s after repair:\n%q\nwant\n%q", name, got, want)
		}
	}
	for name, want := range elems {
		if got := k.set(name); !slices.Equal(got, want) {
			t.Errorf("set %s after repair: %q, want %q", name, got, want)
		}
	}
	if got, err := d.Damage(nets, ports); err != nil || len(got) > 0 {
		t.Errorf("Damage after repair = %q, %v", got, err)
	}
	return k
}

func TestRepairAfterTheRulesetWasFlushed(t *testing.T) {
	healed(t, func(k *fakeKernel) {
		k.state = kernelState{elems: map[string][]storedElem{}, nextHandle: k.state.nextHandle}
	}, "table inet berth missing")
}

func TestRepairAfterAChainWasFlushed(t *testing.T) {
	for _, chain := range []string{"forward", "hostports", "postrouting", "isolation", "prerouting"} {
		t.Run(chain, func(t *testing.T) {
			k := healed(t, func(k *fakeKernel) {
				k.state.rules = slices.DeleteFunc(k.state.rules, func(r storedRule) bool { return r.chain == chain })
			}, "chain "+chain+" flushed")
			// Only the damaged chain is rebuilt.
			for _, line := range k.lastBatch() {
				if changes(line) != "" && !slices.Contains([]string{"add table inet berth"}, line) && !isOf(line, chain) {
					t.Errorf("repair of chain %s touched %q", chain, line)
				}
			}
		})
	}
}

func TestRepairAfterAnElementWasDeleted(t *testing.T) {
	k := healed(t, func(k *fakeKernel) { delete(k.state.elems, "pf4any") }, "map pf4any: 1 port forward missing")
	for _, line := range k.lastBatch() {
		if isOf(line, "forward") || isOf(line, "postrouting") {
			t.Errorf("repair of a map element rebuilt rules: %q", line)
		}
	}
}

// changes returns what a batch line changes ("" for the chain and set
// declarations a repair always repeats).
func changes(line string) string {
	for _, p := range []string{"add chain", "add map", "add set "} {
		if len(line) >= len(p) && line[:len(p)] == p {
			return ""
		}
	}
	return line
}

// isOf reports whether a batch line is about chain.
func isOf(line, chain string) bool {
	for _, p := range []string{"add rule " + chain + " ", "insert rule " + chain + " ", "flush chain " + chain} {
		if len(line) >= len(p) && line[:len(p)] == p {
			return true
		}
	}
	return false
}

func TestChainDamage(t *testing.T) {
	want := chainState{base: 2, nets: map[string]int{"a": 4, "b": 2}}
	for _, c := range []struct {
		got    chainState
		listed bool
		text   string
	}{
		{chainState{}, false, "chain forward missing"},
		{chainState{nets: map[string]int{}}, true, "chain forward flushed"},
		{chainState{nets: map[string]int{"other": 3}}, true, "chain forward flushed"},
		{chainState{base: 2, nets: map[string]int{"a": 4}}, true, "chain forward: 2 of 8 rules missing"},
		{chainState{base: 1, nets: map[string]int{"a": 3, "b": 2}}, true, "chain forward: 2 of 8 rules missing"},
		{chainState{base: 3, nets: map[string]int{"a": 4, "b": 2}}, true, "chain forward altered"},
	} {
		if got := chainDamage("forward", c.got, c.listed, want); got != c.text {
			t.Errorf("chainDamage(%+v, %v) = %q, want %q", c.got, c.listed, got, c.text)
		}
	}
}

func TestElementDamage(t *testing.T) {
	for _, c := range []struct {
		name        string
		isMap, gone bool
		n           int
		text        string
	}{
		{"pf4any", true, false, 2, "map pf4any: 2 port forwards missing"},
		{"pf4", true, false, 1, "map pf4: 1 port forward missing"},
		{"pf6", true, true, 3, "map pf6 missing (3 port forwards)"},
		{"bridges", false, false, 1, "set bridges: 1 element missing"},
		{"isolated", false, true, 2, "set isolated missing (2 elements)"},
	} {
		if got := elementDamage(c.name, c.isMap, c.gone, c.n); got != c.text {
			t.Errorf("elementDamage(%q, %v, %v, %d) = %q, want %q", c.name, c.isMap, c.gone, c.n, got, c.text)
		}
	}
}

// A deleted element and a partly emptied chain are told apart.
func TestDamageOfOneElementAndOneRule(t *testing.T) {
	healed(t, func(k *fakeKernel) {
		k.state.elems["bridges"] = k.state.elems["bridges"][1:]
		for i, r := range k.state.rules {
			if r.chain == "postrouting" && i > 0 {
				k.state.rules = slices.Delete(k.state.rules, i, i+1)
				break
			}
		}
	}, "chain postrouting: 1 of 7 rules missing", "set bridges: 1 element missing")
}

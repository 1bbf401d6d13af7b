package nftables

import (
	"slices"
	"testing"

	"github.com/berthnet/berth/internal/firewall"
)

// healed sets up bridgeA and bridgeB with web's forwards, damages the
// table with damage, and checks that Intact sees it and Repair restores
// the table exactly (same chains in the same order, same elements).
func healed(t *testing.T, damage func(k *fakeKernel)) *fakeKernel {
	t.Helper()
	k := newFakeKernel(t)
	d := k.driver()
	nets := []firewall.NetworkRules{bridgeA, bridgeB}
	ports := []firewall.PortForward{web}
	if err := d.Setup(nets, ports); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.Intact(nets, ports); err != nil || !ok {
		t.Fatalf("Intact after setup = %v, %v", ok, err)
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
	if ok, err := d.Intact(nets, ports); err != nil || ok {
		t.Fatalf("Intact after damage = %v, %v", ok, err)
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
	if ok, err := d.Intact(nets, ports); err != nil || !ok {
		t.Errorf("Intact after repair = %v, %v", ok, err)
	}
	return k
}

func TestRepairAfterTheRulesetWasFlushed(t *testing.T) {
	healed(t, func(k *fakeKernel) {
		k.state = kernelState{elems: map[string][]storedElem{}, nextHandle: k.state.nextHandle}
	})
}

func TestRepairAfterAChainWasFlushed(t *testing.T) {
	for _, chain := range []string{"forward", "hostports", "postrouting", "isolation", "prerouting"} {
		t.Run(chain, func(t *testing.T) {
			k := healed(t, func(k *fakeKernel) {
				k.state.rules = slices.DeleteFunc(k.state.rules, func(r storedRule) bool { return r.chain == chain })
			})
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
	k := healed(t, func(k *fakeKernel) { delete(k.state.elems, "pf4any") })
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

package reliability

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/nettest"
)

// TestPrivilegedFirewallDamage publishes a port of each of K containers,
// damages berth's table from outside berth, then runs one more setup (of
// another container) and, after damaging it again, that container's
// teardown: after each, every one of the K ports must answer from the
// outside client again. The damage is what an administrator or another
// tool does: flush the whole ruleset, delete the chain that DNATs incoming
// connections, flush the map of published ports.
func TestPrivilegedFirewallDamage(t *testing.T) {
	damages := []struct {
		name string
		nft  []string
	}{
		{"flush-ruleset", []string{"flush", "ruleset"}},
		{"delete-chain", []string{"delete", "chain", "inet", "berth", "prerouting"}},
		{"flush-map", []string{"flush", "map", "inet", "berth", "pf4any"}},
	}
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			r := newRig(t)
			w := r.netavark()
			n := newNavNet("relfw", "brelfw0", "198.19", true)
			const K = 3
			ctrs := make([]navCtr, K)
			for i := range ctrs {
				ctrs[i] = r.newNavCtr(n, i, 32000+i)
				if err := w.call("setup", n, ctrs[i]); err != nil {
					t.Fatal(err)
				}
				c := ctrs[i]
				t.Cleanup(func() { _ = w.call("teardown", n, c) })
				serveBanner(t, c.ns, c.name)
				if err := w.reachable(c); err != nil {
					t.Fatalf("before the damage: %v", err)
				}
			}
			extra := r.newNavCtr(n, K, 32100)
			// The second damage finds nothing to delete when the setup
			// before it did not make the chain again: that is logged,
			// the ports are counted all the same.
			damage := func() {
				if out, err := nettest.Run(r.host, 5*time.Second, "nft", d.nft...); err != nil {
					t.Logf("nft %s: %v %s", strings.Join(d.nft, " "), err, firstLine(out))
				}
			}
			damage()
			broken := K - w.answering(ctrs)
			setupErr := w.call("setup", n, extra)
			t.Cleanup(func() { _ = w.call("teardown", n, extra) })
			afterSetup := w.answering(ctrs)
			damage()
			teardownErr := w.call("teardown", n, extra)
			afterTeardown := w.answering(ctrs)
			figures(t, "firewall-damage "+d.name, "k=%d broken_by_damage=%d/%d answering_after_next_setup=%d/%d answering_after_next_teardown=%d/%d next_setup_error=%t next_teardown_error=%t",
				K, broken, K, afterSetup, K, afterTeardown, K, setupErr != nil, teardownErr != nil)
			if setupErr != nil {
				t.Errorf("setup after the damage: %v", setupErr)
			}
			if teardownErr != nil {
				t.Errorf("teardown after the damage: %v", teardownErr)
			}
			if afterSetup != K {
				t.Errorf("after %s and one more setup, %d of %d published ports answer", d.name, afterSetup, K)
			}
			if afterTeardown != K {
				t.Errorf("after %s and one more teardown, %d of %d published ports answer", d.name, afterTeardown, K)
			}
		})
	}
}

// answering counts the containers whose published port answers from the
// outside client (a few quick tries each).
func (w *navWorld) answering(ctrs []navCtr) int {
	ok := 0
	for _, c := range ctrs {
		for try := 0; try < 3; try++ {
			if got, err := nettest.FetchWithin(w.outside, "tcp4", fmt.Sprintf("%s:%d", hostAddr, c.hostPort), 500*time.Millisecond); err == nil && got == c.name {
				ok++
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return ok
}

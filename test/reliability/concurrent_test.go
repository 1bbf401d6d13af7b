package reliability

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPrivilegedConcurrentNetavark runs N `netavark setup` processes at
// once on one network with DNS and a published port each, as Podman does
// when N containers start together, checks every container got its address
// and a sample of the ports answer from outside, then N teardowns at once,
// and counts what is left.
func TestPrivilegedConcurrentNetavark(t *testing.T) {
	r := newRig(t)
	w := r.netavark()
	n := newNavNet("relconc", "brelc0", "198.19", true)
	N := scale(20, 100)
	ctrs := make([]navCtr, N)
	for i := range ctrs {
		ctrs[i] = r.newNavCtr(n, i, 20000+i)
	}
	t.Cleanup(func() {
		for _, c := range ctrs {
			_ = w.call("teardown", n, c)
		}
	})
	all := func(verb string) ([]string, time.Duration) {
		start := time.Now()
		errs := make([]string, N)
		var wg sync.WaitGroup
		for i := range ctrs {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if err := w.call(verb, n, ctrs[i]); err != nil {
					errs[i] = err.Error()
				}
			}(i)
		}
		wg.Wait()
		var bad []string
		for _, e := range errs {
			if e != "" {
				bad = append(bad, e)
			}
		}
		return bad, time.Since(start)
	}
	setupErrs, setupTime := all("setup")
	// Every container has its own address; a sample of published ports
	// answers from outside.
	wrongAddr := 0
	for _, c := range ctrs {
		as, err := addrsIn(c.ns.Path())
		if err != nil || len(as) != 1 || as[0].String() != c.ip {
			wrongAddr++
		}
	}
	unreachable := 0
	for _, i := range []int{0, N / 2, N - 1} {
		serveBanner(t, ctrs[i].ns, ctrs[i].name)
		if err := w.reachable(ctrs[i]); err != nil {
			unreachable++
			t.Errorf("published port of %s: %v", ctrs[i].name, err)
		}
	}
	teardownErrs, teardownTime := all("teardown")
	left := w.residue(n)
	figures(t, "concurrent-netavark", "n=%d calls=%d setup_errors=%d teardown_errors=%d wrong_address=%d unreachable=%d/3 residue=%d setup_ms=%d teardown_ms=%d",
		N, 2*N, len(setupErrs), len(teardownErrs), wrongAddr, unreachable, len(left), setupTime.Milliseconds(), teardownTime.Milliseconds())
	for _, e := range append(setupErrs, teardownErrs...) {
		t.Error(e)
	}
	if wrongAddr > 0 {
		t.Errorf("%d containers without their address", wrongAddr)
	}
	if len(left) > 0 {
		t.Errorf("residue after %d concurrent teardowns: %s", N, strings.Join(left, "; "))
	}

}

package reliability

import (
	"testing"
)

// sample is one look at what could grow with churn.
type sample struct {
	rssKiB, fds  int // of the DNS server netavark runs
	nftLines     int
	nftRules     int
	files        int // regular files under netavark's --config directory
	stateRecords int
}

func (w *navWorld) sample(t *testing.T) sample {
	t.Helper()
	pid := w.dnsPid()
	if pid == 0 {
		t.Fatal("no DNS server runs while a container with DNS is set up")
	}
	rss, fds, err := procStats(pid)
	if err != nil {
		t.Fatal(err)
	}
	st := w.nft()
	return sample{rssKiB: rss, fds: fds, nftLines: st.lines, nftRules: st.rules, files: countFiles(w.cfg),
		stateRecords: len(stateIDs(t, w.cfg+"/berth/state.db"))}
}

// TestPrivilegedChurn sets up and tears down a container (with DNS and a
// published port) over and over while another one stays, so the DNS
// server netavark started runs the whole time. It compares the DNS
// server's memory and descriptors, the ruleset's size and the files and
// records in berth's state at the start (after a warm-up) and at the end.
func TestPrivilegedChurn(t *testing.T) {
	r := newRig(t)
	w := r.netavark()
	n := newNavNet("relchurn", "brelch0", "198.19", true)
	anchor := r.newNavCtr(n, 0, 31000)
	if err := w.call("setup", n, anchor); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.call("teardown", n, anchor) })
	cycles := scale(50, 500)
	// A handful of namespaces, used in turn: the cycles measure berth,
	// not the creation of namespaces.
	ctrs := make([]navCtr, 4)
	for i := range ctrs {
		ctrs[i] = r.newNavCtr(n, i+1, 31001+i)
	}
	errs := 0
	cycle := func(i int) {
		c := ctrs[i%len(ctrs)]
		if err := w.call("setup", n, c); err != nil {
			errs++
			t.Errorf("cycle %d setup: %v", i, err)
		}
		if err := w.call("teardown", n, c); err != nil {
			errs++
			t.Errorf("cycle %d teardown: %v", i, err)
		}
	}
	for i := 0; i < 10; i++ { // warm-up
		cycle(i)
	}
	start := w.sample(t)
	for i := 0; i < cycles; i++ {
		cycle(i)
	}
	end := w.sample(t)
	left := w.residue(n, anchor)
	figures(t, "churn", "cycles=%d errors=%d dns_rss_kib=%d->%d (%+d) dns_fds=%d->%d (%+d) nft_lines=%d->%d (%+d) nft_rules=%d->%d (%+d) files=%d->%d (%+d) state_records=%d->%d (%+d) residue=%d",
		cycles, errs, start.rssKiB, end.rssKiB, end.rssKiB-start.rssKiB, start.fds, end.fds, end.fds-start.fds,
		start.nftLines, end.nftLines, end.nftLines-start.nftLines, start.nftRules, end.nftRules, end.nftRules-start.nftRules,
		start.files, end.files, end.files-start.files, start.stateRecords, end.stateRecords, end.stateRecords-start.stateRecords, len(left))
	// Tolerances: the Go runtime's heap may settle a little higher; every
	// count must come back exactly.
	if grow := end.rssKiB - start.rssKiB; grow > 4096 && grow*4 > start.rssKiB {
		t.Errorf("DNS server grew by %d KiB over %d cycles (from %d KiB)", grow, cycles, start.rssKiB)
	}
	if end.fds > start.fds+2 {
		t.Errorf("DNS server descriptors: %d -> %d", start.fds, end.fds)
	}
	for _, d := range []struct {
		what       string
		start, end int
	}{{"nft lines", start.nftLines, end.nftLines}, {"nft rules", start.nftRules, end.nftRules}, {"files", start.files, end.files}, {"state records", start.stateRecords, end.stateRecords}} {
		if d.end != d.start {
			t.Errorf("%s: %d -> %d after %d cycles", d.what, d.start, d.end, cycles)
		}
	}
	if len(left) > 0 {
		t.Errorf("residue: %v", left)
	}
}

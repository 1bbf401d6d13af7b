package core

import "time"

// The firewall watcher's timing, free of I/O: when a burst of announced
// changes has settled (debounce), and how often repairs that do not hold
// may be repeated (repairGuard).

// debounce decides when a burst of changes has settled: the check is due
// quiet after the last change, and at the latest most after the first, so
// a steady stream of changes still gets checked.
type debounce struct {
	quiet, most time.Duration
	first, last time.Time
	pending     bool
}

// add records a change at now.
func (d *debounce) add(now time.Time) {
	if !d.pending {
		d.first, d.pending = now, true
	}
	d.last = now
}

// due returns when the check of the pending changes is due; ok is false
// when none is pending.
func (d *debounce) due() (at time.Time, ok bool) {
	if !d.pending {
		return time.Time{}, false
	}
	at = d.last.Add(d.quiet)
	if limit := d.first.Add(d.most); limit.Before(at) {
		at = limit
	}
	return at, true
}

// done forgets the pending changes: the check has run.
func (d *debounce) done() { d.pending = false }

// repairGuard keeps a watcher from repairing in a loop when another
// program undoes each repair at once: at most limit repairs in any
// window; past that, the next waits until the oldest of them leaves the
// window.
type repairGuard struct {
	limit  int
	window time.Duration
	recent []time.Time // the repairs in the window, oldest first
}

// next returns when a repair may run, given the ones recorded: now, or
// later when limit repairs already ran in the window.
func (g *repairGuard) next(now time.Time) time.Time {
	g.expire(now)
	if len(g.recent) < g.limit {
		return now
	}
	return g.recent[0].Add(g.window)
}

// record notes a repair at now.
func (g *repairGuard) record(now time.Time) {
	g.expire(now)
	g.recent = append(g.recent, now)
}

// expire drops the repairs that left the window.
func (g *repairGuard) expire(now time.Time) {
	i := 0
	for i < len(g.recent) && !now.Before(g.recent[i].Add(g.window)) {
		i++
	}
	g.recent = g.recent[i:]
}

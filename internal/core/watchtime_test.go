package core

import (
	"testing"
	"time"
)

func TestDebounce(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	d := debounce{quiet: 30 * time.Millisecond, most: 200 * time.Millisecond}
	if _, ok := d.due(); ok {
		t.Fatal("due with nothing pending")
	}
	d.add(ms(0))
	if at, ok := d.due(); !ok || !at.Equal(ms(30)) {
		t.Errorf("one change: due %v %v, want +30ms", at.Sub(t0), ok)
	}
	d.add(ms(20))
	if at, _ := d.due(); !at.Equal(ms(50)) {
		t.Errorf("second change: due %v, want +50ms (quiet after the last)", at.Sub(t0))
	}
	// A steady stream: due no later than most after the first.
	for n := 40; n <= 400; n += 20 {
		d.add(ms(n))
	}
	if at, _ := d.due(); !at.Equal(ms(200)) {
		t.Errorf("stream: due %v, want +200ms", at.Sub(t0))
	}
	d.done()
	if _, ok := d.due(); ok {
		t.Error("due after done")
	}
	d.add(ms(500))
	if at, _ := d.due(); !at.Equal(ms(530)) {
		t.Errorf("after done, a new burst: due %v, want +530ms", at.Sub(t0))
	}
}

func TestRepairGuard(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	g := repairGuard{limit: 3, window: 10 * time.Second}
	for _, at := range []int{0, 1, 2} {
		if next := g.next(s(at)); !next.Equal(s(at)) {
			t.Fatalf("repair %d: next %v, want now", at, next.Sub(t0))
		}
		g.record(s(at))
	}
	if next := g.next(s(3)); !next.Equal(s(10)) {
		t.Errorf("fourth repair in the window: next %v, want +10s", next.Sub(t0))
	}
	if next := g.next(s(10)); !next.Equal(s(10)) {
		t.Errorf("once the first left the window: next %v, want now", next.Sub(t0))
	}
	g.record(s(10))
	if next := g.next(s(11)); !next.Equal(s(11)) {
		t.Errorf("at +11s (repairs at 1, 2, 10 in the window's 3): next %v", next.Sub(t0))
	}
	g.record(s(11))
	if next := g.next(s(11)); !next.Equal(s(12)) {
		t.Errorf("at +11s after a fourth: next %v, want +12s", next.Sub(t0))
	}
}

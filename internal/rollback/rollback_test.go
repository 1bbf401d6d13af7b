package rollback

import (
	"errors"
	"slices"
	"testing"
)

func TestRunReversesAndJoins(t *testing.T) {
	var s Stack
	var order []int
	e1, e3 := errors.New("one"), errors.New("three")
	s.Push(func() error { order = append(order, 1); return e1 })
	s.Defer(func() { order = append(order, 2) })
	s.Push(func() error { order = append(order, 3); return e3 })
	if s.Len() != 3 {
		t.Fatalf("Len %d", s.Len())
	}
	err := s.Run()
	if !slices.Equal(order, []int{3, 2, 1}) {
		t.Errorf("order %v, want 3 2 1", order)
	}
	if !errors.Is(err, e1) || !errors.Is(err, e3) {
		t.Errorf("error %v should hold both failures", err)
	}
	if s.Len() != 0 || s.Run() != nil {
		t.Error("a run stack should be empty")
	}
}

func TestReleaseKeeps(t *testing.T) {
	var s Stack
	ran := false
	s.Defer(func() { ran = true })
	s.Release()
	if err := s.Run(); err != nil || ran {
		t.Errorf("released step ran (%v, %v)", ran, err)
	}
}

func build(fail error, undoErr error, ran *bool) (err error) {
	var rb Stack
	defer rb.OnError(&err)
	rb.Push(func() error { *ran = true; return undoErr })
	return fail
}

func TestOnError(t *testing.T) {
	ran := false
	if err := build(nil, nil, &ran); err != nil || ran {
		t.Errorf("success: err %v, undo ran %v", err, ran)
	}
	boom, undo := errors.New("boom"), errors.New("undo failed")
	err := build(boom, undo, &ran)
	if !ran || !errors.Is(err, boom) || !errors.Is(err, undo) {
		t.Errorf("failure: err %v, undo ran %v", err, ran)
	}
}

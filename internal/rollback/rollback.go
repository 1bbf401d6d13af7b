// Package rollback collects the undo steps of an operation that builds
// something up in several steps, and runs them in reverse order when the
// operation fails, so a failure leaves nothing behind.
package rollback

import "errors"

// Stack is a list of undo steps; its zero value is empty and ready.
type Stack struct {
	steps []func() error
}

// Push adds an undo step that reports an error.
func (s *Stack) Push(undo func() error) { s.steps = append(s.steps, undo) }

// Defer adds an undo step that cannot fail (or whose failure does not
// matter: closing a file, removing a temporary).
func (s *Stack) Defer(undo func()) {
	s.Push(func() error { undo(); return nil })
}

// Len is the number of steps waiting.
func (s *Stack) Len() int { return len(s.steps) }

// Run runs every step, last pushed first, and empties the stack; it goes
// on past failures and returns them joined.
func (s *Stack) Run() error {
	var errs []error
	for i := len(s.steps) - 1; i >= 0; i-- {
		if err := s.steps[i](); err != nil {
			errs = append(errs, err)
		}
	}
	s.steps = nil
	return errors.Join(errs...)
}

// Release forgets the steps without running them: the operation
// succeeded and what it built stays.
func (s *Stack) Release() { s.steps = nil }

// OnError runs the stack when *err is not nil and releases it otherwise;
// deferred at the top of a function with a named error result, it undoes
// whatever the function built before it failed. A failing undo is joined
// to *err.
func (s *Stack) OnError(err *error) {
	if *err == nil {
		s.Release()
		return
	}
	if rerr := s.Run(); rerr != nil {
		*err = errors.Join(*err, rerr)
	}
}

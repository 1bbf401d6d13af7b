// Package boltfile opens bbolt databases that several berth processes
// share (the service, monitors, CLI commands). bbolt retries a file lock
// that another process (or another open in this one) holds every 50 ms;
// Open waits in steps of a fraction of a millisecond growing to a few,
// as the transactions that hold these locks are short.
package boltfile

import (
	"errors"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"
)

// Steps of the wait for a busy lock: the first, and the longest.
const (
	firstStep = 250 * time.Microsecond
	maxStep   = 5 * time.Millisecond
)

// Open is bolt.Open with the file locked before bbolt locks it (which
// then finds the lock its own): shared for ReadOnly, else exclusive. A
// lock still busy after o.Timeout (0: wait for ever) is bbolt's
// ErrTimeout.
func Open(path string, mode os.FileMode, o *bolt.Options) (*bolt.DB, error) {
	var opts bolt.Options
	if o != nil {
		opts = *o
	}
	how := unix.LOCK_EX
	if opts.ReadOnly {
		how = unix.LOCK_SH
	}
	open := opts.OpenFile
	if open == nil {
		open = os.OpenFile
	}
	timeout := opts.Timeout
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := open(name, flag, perm)
		if err != nil {
			return nil, err
		}
		if err := Lock(f, how, timeout); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
	return bolt.Open(path, mode, &opts)
}

// Lock takes a flock (how: unix.LOCK_EX or LOCK_SH) on f, waiting in
// short steps; after timeout (0: never) it gives up with bbolt's
// ErrTimeout.
func Lock(f *os.File, how int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	step := firstStep
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return err
		}
		if timeout > 0 && time.Now().Add(step).After(deadline) {
			return bolterr.ErrTimeout
		}
		time.Sleep(step)
		step = min(2*step, maxStep)
	}
}

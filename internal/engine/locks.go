package engine

// Per-container locks: start is serialised by one lock, cleanup and
// removal by another, so a monitor cleaning up after an exit and a command
// starting the container again do not interleave.

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

func (e *Engine) lockPath(id string) string {
	return filepath.Join(e.cfg.RunRoot, "locks", id)
}

// lock serialises start of one container.
func (e *Engine) lock(id string) (func(), error) { return flock(e.lockPath(id)) }

// lockCleanup serialises cleanup and removal of one container.
func (e *Engine) lockCleanup(id string) (func(), error) { return flock(e.lockPath(id) + ".cleanup") }

func flock(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

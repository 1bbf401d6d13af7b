package engine

// Per-container locks: start is serialised by one lock, cleanup and
// removal by another, so a monitor cleaning up after an exit and a command
// starting the container again do not interleave.

import "path/filepath"

func (e *Engine) lockPath(id string) string {
	return filepath.Join(e.cfg.RunRoot, "locks", id)
}

// lock serialises start of one container.
func (e *Engine) lock(id string) (func(), error) { return e.flock(e.lockPath(id)) }

// lockCleanup serialises cleanup and removal of one container.
func (e *Engine) lockCleanup(id string) (func(), error) { return e.flock(e.lockPath(id) + ".cleanup") }

// flock takes an exclusive lock on path; the wait ends when the command's
// context is done (SIGINT, SIGTERM).
func (e *Engine) flock(path string) (func(), error) {
	f, err := flockCtx(e.ctx(), path)
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}

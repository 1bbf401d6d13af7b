package engine

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/monitor"
)

// ResizeTerminal sets the size of a running container's terminal
// (rows, columns) through its monitor; zeros change nothing.
func (e *Engine) ResizeTerminal(ref string, rows, cols uint16) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	if !c.Running() {
		return fmt.Errorf("container %s is not running: %w", c.Config.Name, ErrRunning)
	}
	if !c.Config.Terminal || rows == 0 || cols == 0 {
		return nil
	}
	return monitor.Resize(e.ResizeSocket(c.Config.ID), rows, cols)
}

// Terminal is the terminal berth allocates for an exec session with a
// terminal when the caller has none to hand over (the Docker API's exec):
// the caller resizes it at any time. A size asked for before the session
// runs applies at its start; one asked for after it ended is kept and
// changes nothing. The zero value is ready to use.
type Terminal struct {
	mu         sync.Mutex
	rows, cols uint16
	master     *os.File
	runc       *os.Process
}

// Resize sets the terminal's size (rows and columns; a zero leaves the
// size as it was, as with Docker).
func (t *Terminal) Resize(rows, cols uint16) error {
	if rows == 0 || cols == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows, t.cols = rows, cols
	return t.apply()
}

// Size is the last size asked for (zeros when none was).
func (t *Terminal) Size() (rows, cols uint16) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rows, t.cols
}

// apply sets the size on the master side and tells runc, which copies its
// terminal's size to the container's terminal on SIGWINCH (its terminal
// is not its controlling one, so the kernel does not signal it).
func (t *Terminal) apply() error {
	if t.master == nil || t.rows == 0 {
		return nil
	}
	ws := &unix.Winsize{Row: t.rows, Col: t.cols}
	if err := unix.IoctlSetWinsize(int(t.master.Fd()), unix.TIOCSWINSZ, ws); err != nil {
		return fmt.Errorf("resize terminal: %w", err)
	}
	if t.runc != nil {
		if err := t.runc.Signal(unix.SIGWINCH); err != nil {
			return fmt.Errorf("resize terminal: %w", err)
		}
	}
	return nil
}

func (t *Terminal) open(master *os.File) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.master = master
	_ = t.apply()
}

func (t *Terminal) started(p *os.Process) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.runc = p
}

func (t *Terminal) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.master, t.runc = nil, nil
}

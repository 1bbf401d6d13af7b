package monitor

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The resize protocol: the client sends "ROWS COLS\n", the monitor sets
// the container terminal's size (the kernel signals SIGWINCH to the
// terminal's foreground processes) and answers "ok\n" or the error.

// Resize asks the monitor listening on socket to set the container
// terminal's size.
func Resize(socket string, rows, cols uint16) error {
	c, err := DialUnix(socket)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("resize: the container's monitor takes no size changes (it was started by an older berth): %w", err)
	}
	if err != nil {
		return fmt.Errorf("resize: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%d %d\n", rows, cols); err != nil {
		return fmt.Errorf("resize: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("resize: %w", err)
	}
	if line = strings.TrimSuffix(line, "\n"); line != "ok" {
		return fmt.Errorf("resize: %s", line)
	}
	return nil
}

// ParseResize reads one request of the resize protocol.
func ParseResize(line string) (rows, cols uint16, err error) {
	if _, err := fmt.Sscanf(line, "%d %d\n", &rows, &cols); err != nil {
		return 0, 0, fmt.Errorf("bad resize request %q: %w", line, err)
	}
	return rows, cols, nil
}

func (m *monitor) acceptResize(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go m.serveResize(c)
	}
}

func (m *monitor) serveResize(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	reply := "ok"
	if err := m.resize(line); err != nil {
		reply = strings.ReplaceAll(err.Error(), "\n", " ")
	}
	fmt.Fprintf(c, "%s\n", reply)
}

func (m *monitor) resize(line string) error {
	rows, cols, err := ParseResize(line)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.size = &unix.Winsize{Row: rows, Col: cols}
	if m.console == nil {
		// runc has not sent the terminal yet: the size applies when it
		// does.
		return nil
	}
	return unix.IoctlSetWinsize(int(m.console.Fd()), unix.TIOCSWINSZ, m.size)
}

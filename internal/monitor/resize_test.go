package monitor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a new terminal's master and slave sides.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// TestResize sets the size of the monitor's terminal through its resize
// socket: a size asked for before the terminal exists applies once it
// does, later ones at once; the container's side sees them.
func TestResize(t *testing.T) {
	master, slave := openPTY(t)
	m := newMonitor(Config{})
	sock := filepath.Join(t.TempDir(), "resize")
	l, err := ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go m.acceptResize(l)
	if err := Resize(sock, 30, 100); err != nil {
		t.Fatalf("resize before the terminal: %v", err)
	}
	// what createWithTerminal does with runc's terminal
	m.mu.Lock()
	m.console = master
	_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, m.size)
	m.mu.Unlock()
	size := func() (uint16, uint16) {
		ws, err := unix.IoctlGetWinsize(int(slave.Fd()), unix.TIOCGWINSZ)
		if err != nil {
			t.Fatal(err)
		}
		return ws.Row, ws.Col
	}
	if r, c := size(); r != 30 || c != 100 {
		t.Fatalf("size after the terminal came: %dx%d", r, c)
	}
	if err := Resize(sock, 50, 132); err != nil {
		t.Fatal(err)
	}
	if r, c := size(); r != 50 || c != 132 {
		t.Fatalf("size after resize: %dx%d", r, c)
	}
	c, err := DialUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("wide\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, _ := c.Read(buf)
	if got := string(buf[:n]); got == "ok\n" || got == "" {
		t.Fatalf("bad request answered %q", got)
	}
}

func FuzzParseResize(f *testing.F) {
	for _, s := range []string{"24 80\n", "0 0\n", "65536 1\n", "-1 2\n", "a b\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		rows, cols, err := ParseResize(line)
		if err != nil && (rows != 0 || cols != 0) {
			t.Fatalf("%q: error %v with a size %dx%d", line, err, rows, cols)
		}
	})
}

func TestResizeNoSocket(t *testing.T) {
	err := Resize(filepath.Join(t.TempDir(), "resize"), 1, 1)
	if err == nil || !strings.Contains(err.Error(), "older berth") {
		t.Fatalf("resize without a socket: %v", err)
	}
}

package engine

import (
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpenPTY: what the slave side writes comes out of the master side
// (with the terminal's CRLF); the slave is a terminal, a plain reader is
// not.
func TestOpenPTY(t *testing.T) {
	if _, err := os.Stat("/dev/ptmx"); err != nil {
		t.Skip("no /dev/ptmx")
	}
	master, slave, err := openPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if !isTerminal(slave) || isTerminal(strings.NewReader("")) {
		t.Error("isTerminal")
	}
	if _, err := slave.WriteString("hi\n"); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	buf := make([]byte, 16)
	n, err := master.Read(buf)
	if err != nil || string(buf[:n]) != "hi\r\n" {
		t.Errorf("read %q %v", buf[:n], err)
	}
}

// TestOpenRawPTY: the exec terminal is raw from the start: input, a NUL
// and a carriage return included, reaches the slave side as it was sent
// and is not echoed (the container's own terminal echoes); the terminal
// resizes, and a Terminal's size applies when it opens.
func TestOpenRawPTY(t *testing.T) {
	if _, err := os.Stat("/dev/ptmx"); err != nil {
		t.Skip("no /dev/ptmx")
	}
	master, slave, err := openRawPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&(unix.ECHO|unix.ICANON|unix.ISIG) != 0 || tio.Oflag&unix.OPOST != 0 || tio.Iflag&unix.ICRNL != 0 {
		t.Fatalf("terminal not raw: %+v", tio)
	}
	in := "\x00a\rb\x04"
	if _, err := master.WriteString(in); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := io.ReadAtLeast(slave, buf, len(in))
	if err != nil || string(buf[:n]) != in {
		t.Fatalf("slave read %q %v", buf[:n], err)
	}
	var tm Terminal
	if err := tm.Resize(30, 100); err != nil {
		t.Fatal(err)
	}
	tm.open(master)
	ws, err := unix.IoctlGetWinsize(int(slave.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Row != 30 || ws.Col != 100 {
		t.Fatalf("size at open: %+v %v", ws, err)
	}
	if err := tm.Resize(50, 132); err != nil {
		t.Fatal(err)
	}
	if ws, err = unix.IoctlGetWinsize(int(slave.Fd()), unix.TIOCGWINSZ); err != nil || ws.Row != 50 || ws.Col != 132 {
		t.Fatalf("size after resize: %+v %v", ws, err)
	}
	tm.close()
	if err := tm.Resize(10, 10); err != nil {
		t.Fatalf("resize after the session: %v", err)
	}
	if r, c := tm.Size(); r != 10 || c != 10 {
		t.Fatalf("kept size %dx%d", r, c)
	}
}
